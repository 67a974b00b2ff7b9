import type { AttemptRef, Lease, ResumedLease } from '../store/index.js';
import { attemptKey } from '../contract.js';
import { Credit, type Reservation } from './credit.js';
import type { CancelRef, WorkerHello, WorkerSink, WorkerSnapshot } from './types.js';


/** A lease a session holds: the attempt, and the task type whose output its result must carry. */
export interface HeldLease extends AttemptRef {
  readonly type: string;
  /** Set when the attempt was sent before its task's insert committed (Dispatcher.insert). */
  readonly early?: EarlyAttempt;
}

/** An attempt sent to its worker before its task's insert committed. */
export interface EarlyAttempt {
  /** True once the task is stored with this lease, false if it never will be: its result is acknowledged only after. */
  readonly stored: Promise<boolean>;
  /**
   * The attempt's end is being written: its worker's result, failure or
   * release (`answered`), or a failure for a worker that was lost. The
   * insert's commit need wait for it no longer; only answers teach the
   * dispatcher how long the task's type takes.
   */
  ending(answered: boolean): void;
}

/**
 * One connected worker: its credit (free slots it granted, `credit.ts`) and
 * the leases it holds. The worker is the authority on its free slots; credit
 * is taken only as a reservation, and never exceeds the slots it declared.
 * A closed or draining session takes nothing.
 */
export class WorkerSession {
  readonly connectedAt = Date.now();
  lastSeenAt = Date.now();
  lastRenewedAt = Date.now();
  readonly #credit: Credit;
  #closed = false;
  #draining = false;
  /** Leases held: attempt key → the attempt and its task type. */
  readonly #leases = new Map<string, HeldLease>();
  /**
   * Attempts whose lease ended here because their result, failure or release
   * came, while that write has not committed (a slow or failing store): the
   * store still names this session, rightly, and it keeps their leases alive.
   */
  readonly #ending = new Map<string, AttemptRef>();

  constructor(
    readonly id: string,
    readonly hello: WorkerHello,
    readonly sink: WorkerSink,
    resumed: readonly ResumedLease[],
  ) {
    for (const ref of resumed) this.#leases.set(attemptKey(ref.id, ref.attempt), { id: ref.id, attempt: ref.attempt, type: ref.type });
    this.#credit = new Credit(hello.slots, this.#leases.size);
  }

  /** Free slots it may be given now: none once closed or draining. */
  get credit(): number {
    return this.#closed || this.#draining ? 0 : this.#credit.free;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Takes up to `n` of its free slots, to be settled exactly once (see Reservation). */
  take(n: number): Reservation | undefined {
    return this.#closed || this.#draining ? undefined : this.#credit.take(n);
  }

  /** Adds credit the worker returned, never past its declared slots. */
  grant(n: number): void {
    this.#credit.grant(n, this.#leases.size);
  }

  /** Marks the session closed; true the first time only, so its attempts are let go once. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** Takes nothing new (it is being told to drain and reconnect). */
  drain(): void {
    this.#draining = true;
  }

  get running(): number {
    return this.#leases.size;
  }

  leases(): AttemptRef[] {
    return [...this.#leases.values()].map(({ id, attempt }) => ({ id, attempt }));
  }

  /** The leases held, each early one with its insert's outcome. */
  held(): HeldLease[] {
    return [...this.#leases.values()];
  }

  /** Sends leases; `early[i]` when lease i was sent before its task's insert committed. */
  assign(leases: readonly Lease[], early?: readonly EarlyAttempt[]): void {
    leases.forEach((lease, i) => {
      const attempt = early?.[i];
      this.#leases.set(
        attemptKey(lease.id, lease.attempt),
        attempt === undefined ? { id: lease.id, attempt: lease.attempt, type: lease.type } : { id: lease.id, attempt: lease.attempt, type: lease.type, early: attempt },
      );
    });
    this.sink.send({ assignments: leases });
  }

  /**
   * Ends a lease; returns it if this session held it. Only the holder may
   * answer for an attempt: a result for a lease returned undefined here is refused.
   */
  endLease(id: string, attempt: number): HeldLease | undefined {
    const k = attemptKey(id, attempt);
    const lease = this.#leases.get(k);
    if (lease !== undefined) this.#leases.delete(k);
    return lease;
  }

  holds(id: string, attempt: number): boolean {
    return this.#leases.has(attemptKey(id, attempt));
  }

  /** A result for this ended lease is being written (see `owns`). */
  ending(id: string, attempt: number): void {
    this.#ending.set(attemptKey(id, attempt), { id, attempt });
  }

  /** That write is done: applied, stale or refused. */
  ended(id: string, attempt: number): void {
    this.#ending.delete(attemptKey(id, attempt));
  }

  /** Holds the lease, or is writing the attempt's result: the store's lease on it is this session's to keep alive. */
  owns(id: string, attempt: number): boolean {
    const k = attemptKey(id, attempt);
    return this.#leases.has(k) || this.#ending.has(k);
  }

  /** Every attempt whose lease this session keeps alive: held, or with its result being written. */
  owned(): AttemptRef[] {
    return [...this.leases(), ...this.#ending.values()];
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
