import type { Logger } from 'pino';
import type { Lease, Store } from '../store/index.js';
import type { WorkerSession } from './session.js';

export interface DispatcherOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly leaseMs: number;
  /** Most assignments claimed for one session at once. */
  readonly maxBatch: number;
}

/**
 * Hands queued tasks to sessions with credit. A pass runs on the next turn
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
 */
/**
 * One claim's assignments go out in messages of at most this many input
 * bytes (a quarter of the default 16 MiB message): 32 inputs of 1 MB claimed
 * at once would otherwise be one message the worker cannot take.
 */
const MAX_ASSIGNMENT_BYTES = 4 * 1024 * 1024;

function* byInputBytes(leases: readonly Lease[]): Generator<Lease[]> {
  let chunk: Lease[] = [];
  let bytes = 0;
  for (const lease of leases) {
    const size = lease.input.value.length + 512;
    if (chunk.length > 0 && bytes + size > MAX_ASSIGNMENT_BYTES) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(lease);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

export class Dispatcher {
  #claimsFailing = false;
  readonly #sessions: WorkerSession[] = [];
  readonly #ready = new Map<string, number>();
  /** QUEUED events ever seen per type: what a short claim keeps is the difference since it began. */
  readonly #queued = new Map<string, number>();
  #start = 0;
  #scheduled = false;
  #paused = false;

  constructor(private readonly options: DispatcherOptions) {}

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
   * A session to give a new task of this type straight away, its credit taken:
   * only when nothing of the type is known to wait (so FIFO and priorities
   * hold) and a worker serving it has a free slot.
   */
  reserve(type: string): WorkerSession | undefined {
    if (this.#paused || this.#ready.get(type) !== 0) return undefined;
    const count = this.#sessions.length;
    for (let i = 0; i < count; i++) {
      const session = this.#sessions[(this.#start + i) % count]!;
      if (session.credit <= 0 || session.closed || session.draining || !session.hello.taskTypes.includes(type)) continue;
      this.#start = (this.#start + i + 1) % count;
      session.credit--;
      return session;
    }
    return undefined;
  }

  /** Stop handing out work (shutdown). */
  pause(): void {
    this.#paused = true;
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
      if (session.credit <= 0 || session.claiming || session.closed || session.draining) continue;
      const types = session.hello.taskTypes;
      const limit = Math.min(session.credit, this.options.maxBatch, this.#available(types));
      if (limit <= 0) continue;
      this.#take(types, limit);
      void this.#claim(session, types, limit);
    }
  }

  async #claim(session: WorkerSession, types: readonly string[], limit: number): Promise<void> {
    session.claiming = true;
    session.credit -= limit;
    const seen = types.map((type) => this.#queued.get(type) ?? 0);
    try {
      const leases = await this.options.store.claim({
        types,
        limit,
        owner: session.id,
        workerId: session.hello.workerId,
        leaseMs: this.options.leaseMs,
        now: Date.now(),
      });
      session.credit += limit - leases.length;
      // Short: nothing more waited when the claim ran; what was queued since may still wait.
      if (leases.length < limit) types.forEach((type, i) => this.#ready.set(type, (this.#queued.get(type) ?? 0) - seen[i]!));
      if (session.closed) {
        // The worker left while the claim ran: hand the tasks straight back.
        await this.options.store.release(leases, Date.now());
      } else {
        for (const chunk of byInputBytes(leases)) session.assign(chunk);
      }
    } catch (error) {
      // Retried on the sweeper's next tick rather than at once, so a failing store is not hammered.
      session.credit += limit;
      session.claiming = false;
      for (const type of types) this.#ready.delete(type);
      // Said once while the store keeps failing (a full disk), not on every pass.
      if (!this.#claimsFailing) this.options.logger.error({ err: error }, 'claim failed; quiet until a claim succeeds');
      this.#claimsFailing = true;
      return;
    }
    this.#claimsFailing = false;
    session.claiming = false;
    if (session.credit > 0) this.schedule();
  }
}
