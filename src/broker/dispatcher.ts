import type { Logger } from 'pino';
import { firstLease, leaseOf, type InsertResult, type Lease, type NewTask, type Store } from '../store/index.js';
import type { Reservation } from './credit.js';
import { RateLimiter } from './rate-limits.js';
import type { EarlyAttempt, WorkerSession } from './session.js';

export interface DispatcherOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly leaseMs: number;
  /** Most assignments claimed for one session at once. */
  readonly maxBatch: number;
  /** Start rates of limited task types; their claims take tokens first. */
  readonly rates?: RateLimiter;
}

/**
 * One claim's assignments go out in messages of at most this many input
 * bytes (a quarter of the default 16 MiB message): 32 inputs of 1 MB claimed
 * at once would otherwise be one message the worker cannot take.
 */
const MAX_ASSIGNMENT_BYTES = 4 * 1024 * 1024;

function* byInputBytes<T>(items: readonly T[], leaseOf: (item: T) => Lease): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = leaseOf(item).input.value.length + 512;
    if (chunk.length > 0 && bytes + size > MAX_ASSIGNMENT_BYTES) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

/** Settles the promise of an early lease's insert (EarlyAttempt.stored). */
interface StoredGate {
  readonly promise: Promise<boolean>;
  resolve(stored: boolean): void;
}

function storedGate(): StoredGate {
  let resolve!: (stored: boolean) => void;
  const promise = new Promise<boolean>((r) => (resolve = r));
  return { promise, resolve };
}

/** An attempt sent before its task's insert committed, and the slot it takes. */
interface EarlyLease {
  readonly lease: Lease;
  readonly attempt: EarlyAttempt;
  readonly reservation: Reservation;
}

/** How much one new answer moves a type's typical answer time (an exponentially weighted mean). */
const ANSWER_WEIGHT = 0.2;

/**
 * Hands queued tasks to sessions with credit, and is the only place that
 * spends credit: a reservation taken from a session (`credit.ts`) becomes
 * leases sent to it, or comes back, exactly once. A pass runs on the next turn
 * of the event loop after anything that may make work possible (a task
 * queued, credit returned), so many triggers coalesce into one pass. Sessions
 * are visited round-robin; each claims at most its credit in one store
 * claim, so no worker holds more than its free slots.
 *
 * `#ready` counts, per task type, the tasks known to be waiting: committed
 * QUEUED events add to it, claims take from it, and a claim that comes back
 * short sets it to the QUEUED events seen since the claim began (the claim
 * may not have seen those tasks: one commit can hold a claim and, after it,
 * the insert of new ones; counting one it did take costs one empty claim).
 * A type never seen is "unknown" (tasks left from before a restart). A pass
 * hands out only what is known to wait, so one queued task costs one claim,
 * not one per idle worker.
 *
 * A rate-limited type (`rate-limits.ts`) is claimed on its own, for at most
 * the whole tokens its bucket holds, so it never holds up the claims of the
 * session's other types; with no token left it waits on one timer for the
 * next token, and takes no shortcut on insert.
 */
export class Dispatcher {
  #claimsFailing = false;
  readonly #sessions: WorkerSession[] = [];
  readonly #ready = new Map<string, number>();
  /** QUEUED events ever seen per type: what a short claim keeps is the difference since it began. */
  readonly #queued = new Map<string, number>();
  /** Claims in flight, by session and (for a limited type) type: one at a time each. */
  readonly #claiming = new Set<string>();
  readonly #rates: RateLimiter;
  /** Per task type, how long its early attempts typically took to answer, in ms (see `#early`). */
  readonly #answerMs = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = 0;
  #start = 0;
  #scheduled = false;
  #paused = false;

  constructor(private readonly options: DispatcherOptions) {
    this.#rates = options.rates ?? new RateLimiter();
  }

  add(session: WorkerSession): void {
    this.#sessions.push(session);
    this.schedule();
  }

  remove(session: WorkerSession): void {
    const index = this.#sessions.indexOf(session);
    if (index >= 0) this.#sessions.splice(index, 1);
  }

  /** A task of this type was queued. */
  markReady(type: string): void {
    this.#queued.set(type, (this.#queued.get(type) ?? 0) + 1);
    const known = this.#ready.get(type);
    if (known !== undefined) this.#ready.set(type, known + 1);
    this.schedule();
  }

  /**
   * Forgets what is known to wait, so the next pass looks in the store again:
   * a safety net against a missed event (a networked store's notification
   * lost in a reconnect). Costs one empty claim per idle session.
   */
  recheck(): void {
    this.#ready.clear();
    this.schedule();
  }

  /**
   * Inserts tasks through `insert`; a task due now whose type has nothing
   * known to wait is leased, in the same write, to a session serving it with
   * a free slot (so FIFO and priorities hold). Each slot taken is used or
   * given back whatever the write does.
   *
   * Such a task is sent to its worker at once, before the insert commits, as
   * RabbitMQ delivers before it confirms: the worker runs it while the commit
   * (its fsync) runs, instead of after. What keeps that safe:
   * - the submit is still answered only once the insert committed (the
   *   caller awaits this);
   * - the session holds the lease with the insert's outcome
   *   (EarlyAttempt.stored). A result, failure or release of the attempt is
   *   written at once: the store applies writes in the order they are called,
   *   so it runs after the insert, in its commit or a later one, and finds
   *   nothing if the insert failed. It is acknowledged only once the insert's
   *   outcome is known, and refused if the task was not stored; its worker is
   *   then told to stop (Cancel). So a result is never written before its
   *   task, and is durable before anyone sees it;
   * - a result that comes while the insert still waits to commit shares that
   *   commit: the store holds a quiet commit back briefly for an attempt whose
   *   type usually answers quickly (`#holdFor`, Store.hold), one fsync
   *   instead of two;
   * - no (task, attempt) is handed out twice, across crashes too. The lease is
   *   written in the insert itself: after a crash the task is either stored,
   *   attempt 1 leased to this session (as when sent after the commit; the
   *   worker resumes it or the lease runs out and a claim makes attempt 2), or
   *   not stored at all: its result and resume are refused as unknown, and no
   *   later life of the server stores it, since its id was made new for this
   *   submit (UUIDv7) and only this insert carries it. Every other attempt
   *   comes from a claim, which raises the stored attempt and sends only after
   *   its commit. Stored attempts only grow, so a server epoch in the lease
   *   would fence nothing more.
   * A task with an idempotency key is sent only after the commit: its key may
   * name a task already there (a resubmit), whose work would then run twice.
   */
  async insert(
    tasks: readonly NewTask[],
    insert: (tasks: NewTask[]) => Promise<InsertResult[]>,
    mayLease: (task: NewTask) => boolean = () => true,
  ): Promise<InsertResult[]> {
    const now = Date.now();
    // A keyed task waits for its key's turn in the claim, and `mayLease` says no for a paused queue's: neither skips the queue.
    const reserved = tasks.map((task) =>
      task.runAt > now || task.options.concurrencyKey !== undefined || !mayLease(task) ? undefined : this.#reserve(task.type),
    );
    const early = reserved.map((slot, i) => (slot === undefined || tasks[i]!.options.idempotencyKey !== undefined ? undefined : storedGate()));
    const leased = tasks.map((task, i) => {
      const slot = reserved[i];
      if (slot === undefined) return task;
      const lease = { owner: slot.session.id, workerId: slot.session.hello.workerId, leaseMs: this.options.leaseMs };
      return { ...task, lease: early[i] === undefined ? lease : { ...lease, startedAt: now } };
    });
    const releases: Array<() => void> = [];
    this.#sendEarly(tasks, reserved, early, now, releases);
    let results: InsertResult[];
    try {
      const inserting = insert(leased);
      this.#holdFor(tasks, early, releases);
      results = await inserting;
    } catch (error) {
      const why = `task not stored (${error instanceof Error ? error.message : String(error)}): its submit failed, its result is not wanted`;
      reserved.forEach((slot, i) => {
        const gate = early[i];
        if (gate !== undefined) this.#notStored(slot!.session, tasks[i]!.id, gate, why);
        else slot?.reservation.settle(0);
      });
      throw error;
    }
    let refunded = false;
    results.forEach((result, i) => {
      const slot = reserved[i];
      if (slot === undefined) return;
      const mine = !result.existing && result.task.leaseOwner === slot.session.id;
      const gate = early[i];
      if (gate !== undefined) {
        if (!mine) return this.#notStored(slot.session, tasks[i]!.id, gate, 'task not stored with this lease: its result is not wanted');
        gate.resolve(true);
      } else if (!mine) {
        slot.reservation.settle(0); // an idempotent resubmit: nothing new to run
        refunded = true;
      } else {
        this.#hand(slot.session, slot.reservation, [leaseOf(result.task)]);
      }
    });
    if (refunded) this.schedule();
    return results;
  }

  /**
   * Sends each session its early leases (attempt 1, as the insert will store
   * them), in one message where they fit. Each attempt's `ending` lets the
   * insert's commit go (`releases[i]`, set by `#holdFor`) and, when its worker
   * answered, learns how long its type takes.
   */
  #sendEarly(
    tasks: readonly NewTask[],
    reserved: ReadonlyArray<{ session: WorkerSession; reservation: Reservation } | undefined>,
    early: ReadonlyArray<StoredGate | undefined>,
    now: number,
    releases: Array<() => void>,
  ): void {
    let bySession: Map<WorkerSession, EarlyLease[]> | undefined;
    const sentAt = performance.now();
    early.forEach((gate, i) => {
      if (gate === undefined) return;
      const { session, reservation } = reserved[i]!;
      const type = tasks[i]!.type;
      let ended = false;
      const attempt: EarlyAttempt = {
        stored: gate.promise,
        ending: (answered) => {
          if (ended) return;
          ended = true;
          if (answered) {
            const ms = performance.now() - sentAt;
            const typical = this.#answerMs.get(type);
            this.#answerMs.set(type, typical === undefined ? ms : typical + (ms - typical) * ANSWER_WEIGHT);
          }
          releases[i]?.();
        },
      };
      bySession ??= new Map();
      let list = bySession.get(session);
      if (list === undefined) bySession.set(session, (list = []));
      list.push({ lease: firstLease(tasks[i]!, now), attempt, reservation });
    });
    if (bySession === undefined) return;
    for (const [session, list] of bySession) {
      for (const chunk of byInputBytes(list, (item) => item.lease)) {
        session.assign(
          chunk.map((item) => item.lease),
          chunk.map((item) => item.attempt),
        );
        for (const item of chunk) item.reservation.settle(1);
      }
    }
  }

  /**
   * Asks the store to hold the insert's commit for the early attempts whose
   * type usually answers quickly (a type not seen yet is assumed to): their
   * results then share that commit, one fsync for both (Store.hold). The
   * store decides how long it would wait, and holds nothing once busy.
   */
  #holdFor(tasks: readonly NewTask[], early: ReadonlyArray<StoredGate | undefined>, releases: Array<() => void>): void {
    const hold = this.options.store.hold;
    if (hold === undefined) return;
    early.forEach((gate, i) => {
      if (gate === undefined) return;
      const release = hold.call(this.options.store, this.#answerMs.get(tasks[i]!.type) ?? 0);
      if (release !== undefined) releases[i] = release;
    });
  }

  /** An early lease's task was not stored: its result will be refused, and its worker told to stop. */
  #notStored(session: WorkerSession, id: string, gate: StoredGate, reason: string): void {
    gate.resolve(false);
    if (session.endLease(id, 1) !== undefined && !session.closed) session.cancel([{ id, attempt: 1, reason }]);
  }

  /** A session serving `type` with a free slot, one slot taken, round-robin; only when nothing of the type is known to wait. */
  #reserve(type: string): { session: WorkerSession; reservation: Reservation } | undefined {
    if (this.#paused || this.#ready.get(type) !== 0 || this.#rates.limited(type)) return undefined;
    const count = this.#sessions.length;
    for (let i = 0; i < count; i++) {
      const session = this.#sessions[(this.#start + i) % count]!;
      if (session.credit <= 0 || !session.hello.taskTypes.includes(type)) continue;
      const reservation = session.take(1);
      if (reservation === undefined) continue;
      this.#start = (this.#start + i + 1) % count;
      return { session, reservation };
    }
    return undefined;
  }

  /**
   * Settles a reservation with the leases it bought: sent to the session, or,
   * if the worker left meanwhile, handed straight back to the queue.
   */
  #hand(session: WorkerSession, reservation: Reservation, leases: readonly Lease[]): void {
    if (session.closed) {
      reservation.settle(0);
      if (leases.length > 0) {
        this.options.store.release(leases, Date.now()).catch((error: unknown) =>
          this.options.logger.error({ err: error }, 'failed to hand back the tasks of a worker that left'),
        );
      }
      return;
    }
    for (const chunk of byInputBytes(leases, (lease) => lease)) session.assign(chunk);
    reservation.settle(leases.length);
  }

  /** Stop handing out work (shutdown). */
  pause(): void {
    this.#paused = true;
    clearTimeout(this.#timer);
  }

  /** A pass in `ms` (the next token of a limited type); one timer, at the earliest time asked. */
  #wakeIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.schedule();
    }, ms);
  }

  schedule(): void {
    if (this.#scheduled || this.#paused) return;
    this.#scheduled = true;
    setImmediate(() => this.#pass());
  }

  /** Tasks known to wait for any of these types; Infinity when any is unknown. */
  #available(types: readonly string[]): number {
    let sum = 0;
    for (const type of types) sum += this.#ready.get(type) ?? Infinity;
    return sum;
  }

  #take(types: readonly string[], count: number): void {
    for (const type of types) {
      if (count <= 0) return;
      const known = this.#ready.get(type);
      if (known === undefined) return;
      const taken = Math.min(known, count);
      this.#ready.set(type, known - taken);
      count -= taken;
    }
  }

  #pass(): void {
    this.#scheduled = false;
    const count = this.#sessions.length;
    if (count === 0 || this.#paused) return;
    this.#start = (this.#start + 1) % count;
    for (let i = 0; i < count; i++) {
      const session = this.#sessions[(this.#start + i) % count]!;
      const all = session.hello.taskTypes;
      // Limited types first: their few tokens should not wait behind a large claim of the others.
      let types = all;
      if (this.#rates.any) {
        for (const type of all) if (this.#rates.limited(type)) this.#claimLimited(session, type);
        types = all.filter((type) => !this.#rates.limited(type));
      }
      if (types.length === 0 || session.credit <= 0 || this.#claiming.has(session.id)) continue;
      const limit = Math.min(session.credit, this.options.maxBatch, this.#available(types));
      if (limit <= 0) continue;
      const reservation = session.take(limit);
      if (reservation === undefined) continue;
      this.#take(types, limit);
      void this.#claim(session, types, reservation, session.id);
    }
  }

  #claimLimited(session: WorkerSession, type: string): void {
    const rates = this.#rates;
    const key = `${session.id}\0${type}`;
    if (session.credit <= 0 || this.#claiming.has(key)) return;
    const want = Math.min(session.credit, this.options.maxBatch, this.#available([type]));
    if (want <= 0) return;
    const tokens = rates.take(type, want);
    if (tokens === 0) return this.#wakeIn(rates.nextTokenMs(type));
    const reservation = session.take(tokens);
    if (reservation === undefined) return rates.giveBack(type, tokens);
    this.#take([type], tokens);
    void this.#claim(session, [type], reservation, key, type);
  }

  /** `rated`: the limited type whose tokens paid for the claim; what it does not use goes back. */
  async #claim(session: WorkerSession, types: readonly string[], reservation: Reservation, key: string, rated?: string): Promise<void> {
    this.#claiming.add(key);
    const limit = reservation.count;
    const seen = types.map((type) => this.#queued.get(type) ?? 0);
    let leases: Lease[];
    try {
      leases = await this.options.store.claim({
        types,
        limit,
        owner: session.id,
        workerId: session.hello.workerId,
        leaseMs: this.options.leaseMs,
        now: Date.now(),
      });
    } catch (error) {
      // Retried on the sweeper's next tick rather than at once, so a failing store is not hammered.
      reservation.settle(0);
      if (rated !== undefined) this.#rates.giveBack(rated, limit);
      this.#claiming.delete(key);
      for (const type of types) this.#ready.delete(type);
      // Said once while the store keeps failing (a full disk), not on every pass.
      if (!this.#claimsFailing) this.options.logger.error({ err: error }, 'claim failed; quiet until a claim succeeds');
      this.#claimsFailing = true;
      return;
    }
    // Short: nothing more waited when the claim ran; what was queued since may still wait.
    if (leases.length < limit) types.forEach((type, i) => this.#ready.set(type, (this.#queued.get(type) ?? 0) - seen[i]!));
    if (rated !== undefined) this.#rates.giveBack(rated, limit - leases.length);
    this.#hand(session, reservation, leases);
    this.#claimsFailing = false;
    this.#claiming.delete(key);
    if (session.credit > 0) this.schedule();
  }
}
