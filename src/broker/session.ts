import type { AttemptRef, Lease, ResumedLease } from '../store/index.js';
import type { CancelRef, WorkerHello, WorkerSink, WorkerSnapshot } from './types.js';

const key = (id: string, attempt: number) => `${id}#${attempt}`;

/** A lease a session holds: the attempt, and the task type whose output its result must carry. */
export interface HeldLease extends AttemptRef {
  readonly type: string;
}

/**
 * One connected worker: its credit (free slots it granted) and the leases it
 * holds. The worker is the authority on its free slots; the server only
 * clamps what it claims so that credit never exceeds the slots it declared.
 */
export class WorkerSession {
  readonly connectedAt = Date.now();
  lastSeenAt = Date.now();
  lastRenewedAt = Date.now();
  credit: number;
  /** A claim for this session is in flight. */
  claiming = false;
  closed = false;
  /** Told to drain: takes nothing new. */
  draining = false;
  /** Leases held: "id#attempt" → the attempt and its task type. */
  readonly #leases = new Map<string, HeldLease>();

  constructor(
    readonly id: string,
    readonly hello: WorkerHello,
    readonly sink: WorkerSink,
    resumed: readonly ResumedLease[],
  ) {
    for (const ref of resumed) this.#leases.set(key(ref.id, ref.attempt), { id: ref.id, attempt: ref.attempt, type: ref.type });
    this.credit = Math.max(0, hello.slots - resumed.length);
  }

  get running(): number {
    return this.#leases.size;
  }

  leases(): AttemptRef[] {
    return [...this.#leases.values()].map(({ id, attempt }) => ({ id, attempt }));
  }

  /** Adds credit the worker returned, never past its declared slots. */
  grant(n: number): void {
    this.credit = Math.min(this.hello.slots - this.#leases.size, this.credit + n);
    if (this.credit < 0) this.credit = 0;
  }

  assign(leases: readonly Lease[]): void {
    for (const lease of leases) this.#leases.set(key(lease.id, lease.attempt), { id: lease.id, attempt: lease.attempt, type: lease.type });
    this.sink.send({ assignments: leases });
  }

  /**
   * Forgets a lease; returns it if this session held it. Only the holder may
   * answer for an attempt: a result for a lease returned undefined here is refused.
   */
  settle(id: string, attempt: number): HeldLease | undefined {
    const k = key(id, attempt);
    const lease = this.#leases.get(k);
    if (lease !== undefined) this.#leases.delete(k);
    return lease;
  }

  holds(id: string, attempt: number): boolean {
    return this.#leases.has(key(id, attempt));
  }

  cancel(refs: readonly CancelRef[]): void {
    if (refs.length > 0) this.sink.send({ cancels: refs });
  }

  snapshot(): Omit<WorkerSnapshot, 'replica'> {
    return {
      sessionId: this.id,
      workerId: this.hello.workerId,
      taskTypes: this.hello.taskTypes,
      slots: this.hello.slots,
      running: this.#leases.size,
      labels: this.hello.labels,
      version: this.hello.version,
      peer: this.hello.peer,
      connectedAt: this.connectedAt,
      lastSeenAt: this.lastSeenAt,
    };
  }
}
