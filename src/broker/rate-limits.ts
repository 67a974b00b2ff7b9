/** A task type's start rate: tasks started per second, and how many may start at once after a quiet spell. */
export interface RateLimit {
  readonly perSecond: number;
  /** Bucket size; default: one second's worth (at least 1). */
  readonly burst?: number;
}

/** The highest rate and burst accepted (per task type). */
export const MAX_RATE = 1_000_000;

/**
 * What is wrong with a rate limit, naming `where` (a flag or an option field),
 * or undefined when it is valid.
 */
export function rateLimitProblem(limit: RateLimit, where: string): string | undefined {
  const { perSecond, burst } = limit;
  if (!Number.isFinite(perSecond) || perSecond <= 0 || perSecond > MAX_RATE) {
    return `${where}: rate_per_second must be a number above 0 and at most ${MAX_RATE}; got ${perSecond}`;
  }
  if (burst !== undefined && (!Number.isInteger(burst) || burst < 1 || burst > MAX_RATE)) {
    return `${where}: rate_burst must be an integer in 1..${MAX_RATE}; got ${burst}`;
  }
  return undefined;
}

/** The bucket size a limit means. */
export const burstOf = (limit: RateLimit): number => limit.burst ?? Math.max(1, Math.ceil(limit.perSecond));

/**
 * Token buckets for rate-limited task types, consulted by the dispatcher:
 * a claim of a limited type takes whole tokens first and asks the store for
 * at most that many tasks, and gives back what the claim did not use. A
 * bucket starts full (`burst` tokens) and refills at `perSecond`.
 *
 * Replicas sharing a store split each budget: `share` (the number of live
 * replicas serving the type, at least 1) divides the rate and the burst, so
 * the sum over replicas stays within the limit. It is the honest cheap
 * answer, not a shared counter: a replica whose workers are idle leaves
 * its part unused, and the split follows membership changes only as fast
 * as the shared worker list does.
 */
export class RateLimiter {
  readonly #limits = new Map<string, RateLimit>();
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #shares = new Map<string, number>();

  constructor(private readonly clock: () => number = () => performance.now()) {}

  set(type: string, limit: RateLimit | undefined): void {
    if (limit === undefined) {
      this.#limits.delete(type);
      this.#buckets.delete(type);
      return;
    }
    this.#limits.set(type, limit);
    this.#buckets.set(type, { tokens: this.#capacity(type, limit), at: this.clock() });
  }

  /** Whether any type is limited (the dispatcher's fast path when none is). */
  get any(): boolean {
    return this.#limits.size > 0;
  }

  limited(type: string): boolean {
    return this.#limits.has(type);
  }

  limitOf(type: string): RateLimit | undefined {
    return this.#limits.get(type);
  }

  /** How many replicas share the type's budget (1 for a store one server owns). */
  setShare(type: string, replicas: number): void {
    const share = Math.max(1, Math.floor(replicas));
    if ((this.#shares.get(type) ?? 1) === share) return;
    this.#shares.set(type, share);
    const limit = this.#limits.get(type);
    const bucket = this.#buckets.get(type);
    if (limit !== undefined && bucket !== undefined) bucket.tokens = Math.min(bucket.tokens, this.#capacity(type, limit));
  }

  /** Takes up to `want` whole tokens of the type; returns how many it took. */
  take(type: string, want: number): number {
    const bucket = this.#refill(type);
    if (bucket === undefined) return want;
    const taken = Math.max(0, Math.min(want, Math.floor(bucket.tokens)));
    bucket.tokens -= taken;
    return taken;
  }

  /** Gives back tokens a claim took but did not use. */
  giveBack(type: string, count: number): void {
    const bucket = this.#refill(type);
    const limit = this.#limits.get(type);
    if (bucket === undefined || limit === undefined || count <= 0) return;
    bucket.tokens = Math.min(this.#capacity(type, limit), bucket.tokens + count);
  }

  /** Milliseconds until the type has a whole token (0 if it has one now). */
  nextTokenMs(type: string): number {
    const bucket = this.#refill(type);
    const limit = this.#limits.get(type);
    if (bucket === undefined || limit === undefined || bucket.tokens >= 1) return 0;
    return Math.ceil(((1 - bucket.tokens) / this.#rate(type, limit)) * 1000);
  }

  #rate(type: string, limit: RateLimit): number {
    return limit.perSecond / (this.#shares.get(type) ?? 1);
  }

  #capacity(type: string, limit: RateLimit): number {
    return Math.max(1, burstOf(limit) / (this.#shares.get(type) ?? 1));
  }

  #refill(type: string): { tokens: number; at: number } | undefined {
    const bucket = this.#buckets.get(type);
    const limit = this.#limits.get(type);
    if (bucket === undefined || limit === undefined) return undefined;
    const now = this.clock();
    bucket.tokens = Math.min(this.#capacity(type, limit), bucket.tokens + ((now - bucket.at) / 1000) * this.#rate(type, limit));
    bucket.at = now;
    return bucket;
  }
}

/** How often a replica sharing a store recounts the replicas serving each limited type. */
const SHARE_REFRESH_MS = 5_000;

/**
 * Keeps each limited type's share current on a store shared by replicas:
 * the number of replicas with a live worker session serving the type (the
 * shared worker list), at least 1. Returns a stop function.
 */
export function startRateShares(
  rates: RateLimiter,
  types: () => Iterable<string>,
  workers: () => Promise<ReadonlyArray<{ readonly replica: string; readonly taskTypes: readonly string[] }>>,
): () => void {
  const refresh = async () => {
    const limited = [...types()].filter((type) => rates.limited(type));
    if (limited.length === 0) return;
    const entries = await workers();
    for (const type of limited) rates.setShare(type, new Set(entries.filter((e) => e.taskTypes.includes(type)).map((e) => e.replica)).size);
  };
  const timer = setInterval(() => void refresh().catch(() => undefined), SHARE_REFRESH_MS);
  timer.unref();
  return () => clearInterval(timer);
}
