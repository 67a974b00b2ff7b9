import type { TaskState } from '../../gen/ts/taskwire/v1/task.js';

/** A packed message: the Any of the contracts, without the proto types. */
export interface Payload {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  readonly jitter: number;
}

/**
 * How long a finished task is kept, by the state it ended in, in ms; 0 keeps
 * it forever. Resolved at submit (the type's defaults, then the server's) and
 * stored with the task, so every replica deletes it at the same time.
 */
export interface Retention {
  readonly succeededMs: number;
  readonly failedMs: number;
  readonly cancelledMs: number;
}

/** Options of a task, resolved (defaults filled in) at submit. */
export interface TaskOptionsRecord {
  readonly queue: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  readonly executionTimeoutMs?: number;
  readonly queueTimeoutMs?: number;
  readonly idempotencyKey?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly traceContext: Readonly<Record<string, string>>;
  /** Unset: kept forever (tasks stored before retention existed). */
  readonly retention?: Retention;
  /** Tasks of one key run at most `concurrencyLimit` at once, in submission order (the claim enforces it). */
  readonly concurrencyKey?: string;
  /** Set with `concurrencyKey`: 1..1000. */
  readonly concurrencyLimit?: number;
}

export interface TaskErrorRecord {
  readonly attempt: number;
  readonly message: string;
  readonly code: number;
  readonly retryable: boolean;
  readonly workerId?: string;
  readonly time: number;
}

/** A stored task. Times are milliseconds since the epoch. */
export interface TaskRecord {
  readonly id: string;
  readonly type: string;
  readonly state: TaskState;
  readonly input: Payload;
  readonly output?: Payload;
  readonly options: TaskOptionsRecord;
  /** Fencing token: incremented by every claim. */
  readonly attempt: number;
  /** Failed attempts since the task was created or last revived. */
  readonly failures: number;
  readonly errors: readonly TaskErrorRecord[];
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly runAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly workerId?: string;
  /** The worker session holding the lease, while RUNNING. */
  readonly leaseOwner?: string;
  readonly leaseExpiresAt?: number;
  /** When the running attempt must end (execution timeout). */
  readonly deadlineAt?: number;
  readonly progressPercent: number;
  readonly progressMessage: string;
  readonly cancelReason?: string;
}

export interface NewTask {
  readonly id: string;
  readonly type: string;
  readonly input: Payload;
  readonly options: TaskOptionsRecord;
  /** When it may run; now or earlier means QUEUED at once, later means SCHEDULED. */
  readonly runAt: number;
  /**
   * Dispatch at once: the task is inserted RUNNING, attempt 1, leased to this
   * worker session (insert and claim in one write). For a task due now whose
   * type has nothing waiting, when a worker has a free slot. `startedAt`: when
   * the attempt began, if before the insert (the broker sent it to the worker
   * while the insert was still to commit); its deadline counts from then.
   */
  readonly lease?: { readonly owner: string; readonly workerId: string; readonly leaseMs: number; readonly startedAt?: number };
}

export interface InsertResult {
  readonly task: TaskRecord;
  /** The idempotency key matched this existing task; nothing was inserted. */
  readonly existing: boolean;
}

/** What a worker needs to run one claimed attempt. */
export interface Lease {
  readonly id: string;
  readonly type: string;
  readonly attempt: number;
  readonly input: Payload;
  readonly queue: string;
  readonly maxAttempts: number;
  readonly deadlineAt?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ClaimRequest {
  readonly types: readonly string[];
  readonly limit: number;
  /** The worker session that will hold the leases. */
  readonly owner: string;
  readonly workerId: string;
  readonly leaseMs: number;
  readonly now: number;
}

export interface AttemptRef {
  readonly id: string;
  readonly attempt: number;
}

/** An attempt a reconnected session took over, with its task type. */
export interface ResumedLease extends AttemptRef {
  readonly type: string;
}

export interface CompleteItem extends AttemptRef {
  readonly output: Payload;
}

export interface FailItem extends AttemptRef {
  readonly message: string;
  readonly code: number;
  readonly retryable: boolean;
  readonly workerId?: string;
}

export interface ProgressItem extends AttemptRef {
  readonly percent: number;
  readonly message: string;
}

/** The outcome of a fenced write: applied, or rejected because the attempt is not current. */
export type Fenced = { readonly applied: true; readonly state: TaskState } | { readonly applied: false };

/** Which tasks: every field set must match (src/store/filter.ts turns it into SQL). Times are epoch ms, `[since, before)`. */
export interface TaskQuery {
  readonly queue?: string;
  /** One state (the older single-state field); `states` wins when both are given. */
  readonly state?: TaskState;
  readonly states?: readonly TaskState[];
  readonly type?: string;
  readonly createdSince?: number;
  readonly createdBefore?: number;
  readonly finishedSince?: number;
  readonly finishedBefore?: number;
  /** Every one of these labels, with these values. */
  readonly labels?: Readonly<Record<string, string>>;
  /** The code of the task's last error. */
  readonly errorCode?: number;
}

export interface ListFilter extends TaskQuery {
  /** Default newest first. A cursor continues in the order it was issued for. */
  readonly order?: 'newest' | 'oldest';
}

/** A task a bulk action selected: its id and its place in insertion order (to continue after it). */
export interface MatchedTask {
  readonly id: string;
  readonly seq: number;
}

export interface ListPage {
  readonly tasks: readonly TaskRecord[];
  /** Opaque cursor for the next page; undefined at the end. */
  readonly next?: string;
  /** The cursor that continues after `tasks[index]`: to end a page early (a page bounded in bytes). */
  readonly after: (index: number) => string;
}

/** A concurrency key with tasks waiting (SCHEDULED or QUEUED). */
export interface KeyCounts {
  readonly queue: string;
  readonly key: string;
  readonly waiting: number;
  readonly running: number;
}

export interface QueueCounts {
  readonly queue: string;
  readonly counts: Readonly<Partial<Record<TaskState, number>>>;
}

/**
 * A committed change, published after the commit. In one process the store
 * calls its listeners; a networked store also delivers other servers' changes.
 */
export interface TaskEvent {
  readonly id: string;
  readonly type: string;
  readonly queue: string;
  readonly state: TaskState;
  readonly attempt: number;
  /** When the task became due (its run_at), on an attempt's start: with `startedAt`, the queue wait. */
  readonly dueAt?: number;
  /** When the attempt started, on its start and on its end. */
  readonly startedAt?: number;
  /** When the attempt or task ended, on an end. */
  readonly finishedAt?: number;
  /** Another replica committed it (delivered by a networked store). */
  readonly remote?: true;
  /** The state before the change; UNSPECIFIED for an insert. */
  readonly previous: TaskState;
  /** The lease owner of the attempt that ended, when the task left RUNNING. */
  readonly owner?: string;
  readonly output?: Payload;
  readonly error?: TaskErrorRecord;
  /** The task's concurrency key, on inserts and when an attempt or the task ended: a key's next task may now run. */
  readonly concurrencyKey?: string;
  /** Set for progress events (state unchanged). */
  readonly progress?: { readonly percent: number; readonly message: string };
}

export type TaskListener = (events: readonly TaskEvent[]) => void;

/**
 * Tasks deleted in one commit, by queue and the state they were in (finished
 * tasks removed by the cleaner, or by an operator). Published after the
 * commit like TaskEvents (every replica's, on a networked store), so counts
 * kept in memory stay right.
 */
export interface Deletion {
  readonly queue: string;
  readonly state: TaskState;
  readonly count: number;
  /** `retention`: the cleaner; `request`: an operator deleted or purged them. */
  readonly cause: 'retention' | 'request';
  /** Another replica committed it (delivered by a networked store). */
  readonly remote?: true;
}

export type DeletionListener = (deletions: readonly Deletion[]) => void;

/** Finished tasks of one queue to delete (`Store.purge`). */
export interface PurgeRequest {
  readonly queue: string;
  /** End states to delete; each must be terminal. */
  readonly states: readonly TaskState[];
  /** Only tasks that finished before this time (epoch ms). */
  readonly finishedBefore?: number;
  /** Most tasks deleted by this call (one commit). */
  readonly limit: number;
}

/** A worker session as every replica sharing a store sees it (`SharedWorkers`). */
export interface WorkerEntry {
  /** The server replica the session is connected to. */
  readonly replica: string;
  readonly sessionId: string;
  readonly workerId: string;
  readonly taskTypes: readonly string[];
  readonly slots: number;
  readonly running: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly version: string;
  readonly peer: string;
  readonly connectedAt: number;
  readonly lastSeenAt: number;
}

/**
 * The worker sessions of every replica sharing a networked store. Each
 * replica writes its own sessions with an expiry and refreshes them well
 * before it passes, so a replica that dies without a word (kill -9) drops out
 * of every answer when its entries expire.
 */
export interface SharedWorkers {
  /** Writes (or refreshes) sessions, alive until `expiresAt`. */
  put(entries: readonly WorkerEntry[], expiresAt: number): Promise<void>;
  /** Removes sessions that ended. */
  remove(sessionIds: readonly string[]): Promise<void>;
  /** Every replica's sessions not yet expired at `now`; expired ones are deleted on the way. */
  list(now: number): Promise<WorkerEntry[]>;
}

/** How a task ended: what a terminal event carries, or a read of a task that has ended. */
export type TaskEnd = Pick<TaskEvent, 'id' | 'state' | 'attempt' | 'output' | 'error'>;

/**
 * A schedule as stored. The store keeps `spec` as the broker wrote it (JSON)
 * and reads none of it: it only fires, fenced by `version`.
 */
export interface ScheduleRecord {
  readonly id: string;
  readonly spec: string;
  readonly input: Payload;
  readonly paused: boolean;
  /** The next due time; undefined while paused. */
  readonly nextFireAt?: number;
  /** The due time of the last task fired. */
  readonly lastFireAt?: number;
  readonly lastTaskId?: string;
  readonly fired: number;
  readonly missedSkipped: number;
  readonly overlapSkipped: number;
  readonly lastMissed: string;
  readonly lastMissedAt?: number;
  /** Incremented by every write: the fence of a firing. */
  readonly version: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NewSchedule {
  readonly id: string;
  readonly spec: string;
  readonly input: Payload;
  readonly paused: boolean;
  readonly nextFireAt?: number;
}

/** A change by hand: each field set replaces the stored one; `nextFireAt` null pauses. */
export interface ScheduleChange {
  readonly spec?: string;
  readonly input?: Payload;
  readonly paused?: boolean;
  readonly nextFireAt?: number | null;
}

/**
 * One firing: insert `tasks` and advance the schedule in one write, only if
 * the schedule is still at `version` (a replica or an earlier run that fired
 * first moved it on). Each task carries the idempotency key of its
 * (schedule, due time), so a due time is never inserted twice either way.
 */
export interface ScheduleFiring {
  readonly id: string;
  readonly version: number;
  readonly nextFireAt: number;
  readonly tasks: readonly NewTask[];
  /** The due time of the last of `tasks`. */
  readonly lastFireAt?: number;
  /** Added to the counters. */
  readonly missedSkipped: number;
  readonly overlapSkipped: number;
  readonly lastMissed?: { readonly text: string; readonly at: number };
}

export type FiringResult =
  | { readonly applied: false }
  | { readonly applied: true; readonly tasks: readonly InsertResult[]; readonly schedule: ScheduleRecord };

export interface SchedulePage {
  readonly schedules: readonly ScheduleRecord[];
  /** The id to continue after; undefined at the end. */
  readonly next?: string;
}

/** Schedules, stored beside the tasks they fire (see ScheduleFiring). */
export interface ScheduleStore {
  /** ALREADY_EXISTS when the id is taken. */
  createSchedule(schedule: NewSchedule, now: number): Promise<ScheduleRecord>;
  /** NOT_FOUND when there is no such schedule. */
  updateSchedule(id: string, change: ScheduleChange, now: number): Promise<ScheduleRecord>;
  /** NOT_FOUND when there is no such schedule. */
  deleteSchedule(id: string): Promise<void>;
  getSchedule(id: string): Promise<ScheduleRecord | undefined>;
  /** Ordered by id, after `after`. */
  listSchedules(pageSize: number, after: string | undefined): Promise<SchedulePage>;
  /** Schedules not paused whose next due time is at or before `now`, earliest first. */
  dueSchedules(now: number, limit: number): Promise<ScheduleRecord[]>;
  /** The earliest next due time of any schedule not paused. */
  nextScheduleDue(): Promise<number | undefined>;
  fireSchedule(firing: ScheduleFiring, now: number): Promise<FiringResult>;
  /** Calls `listener` after any schedule changed: here, or (a networked store) on another replica. */
  onSchedulesChanged(listener: () => void): () => void;
}

/**
 * Durable task storage. Every transition follows `transitions.ts`; every
 * write that ends or changes an attempt is fenced by (id, attempt); writes
 * are acknowledged only after they are committed. Implementations may group
 * concurrent writes into one commit. Writes apply in the order they are
 * called: one called after another runs after it, in the same commit or a
 * later one (so a task's result may be written before its insert has
 * committed, and never commits before it).
 */
export interface Store extends ScheduleStore {
  /**
   * The caller expects another write within `expectMs` that could share the
   * pending commit (the result of a task sent ahead of its insert): a store
   * that lingers may hold that commit back, for a bounded time, until the
   * returned function is called. Undefined when it will not wait (absent:
   * never). One commit then makes both durable: one fsync instead of two.
   */
  hold?(expectMs: number): (() => void) | undefined;
  /** Inserts tasks (one commit); an idempotency key already used returns the existing task. */
  insert(tasks: readonly NewTask[]): Promise<InsertResult[]>;
  /** Atomically claims up to `limit` QUEUED tasks of the given types, priority then FIFO. */
  claim(request: ClaimRequest): Promise<Lease[]>;
  complete(items: readonly CompleteItem[], now: number): Promise<Fenced[]>;
  /**
   * Fails attempts: retry after the task's own backoff (exponentialBackoff),
   * or FAILED when attempts are exhausted or the error is not retryable.
   */
  fail(items: readonly FailItem[], now: number): Promise<Fenced[]>;
  /** Hands attempts back to the queue without counting a failure. */
  release(items: readonly AttemptRef[], now: number): Promise<Fenced[]>;
  /** Records the latest progress of running attempts (fenced; stale ones are ignored). */
  progress(items: readonly ProgressItem[], now: number): Promise<void>;
  /** Extends the given leases while `owner` still holds them; returns how many. */
  renewLeases(owner: string, leases: readonly AttemptRef[], expiresAt: number): Promise<number>;
  /**
   * A server starting: every RUNNING lease that would end before `until` ends
   * at `until` instead, so workers have time to come back and resume what they
   * ran while no server renewed their leases. Returns how many.
   */
  extendLeases(until: number): Promise<number>;
  /**
   * A reconnected worker's session takes over attempts it still runs; returns those kept.
   * Only attempts leased to the same worker identity (`workerId`) are taken over.
   */
  resume(owner: string, workerId: string, refs: readonly AttemptRef[], expiresAt: number): Promise<ResumedLease[]>;
  cancel(id: string, reason: string, now: number): Promise<TaskRecord>;
  revive(id: string, now: number): Promise<TaskRecord>;
  get(id: string): Promise<TaskRecord | undefined>;
  /**
   * How the task ended once it has reached a terminal state; 'live' while it
   * has not; undefined when there is no such task. One light read.
   */
  outcome(id: string): Promise<TaskEnd | 'live' | undefined>;
  list(filter: ListFilter, pageSize: number, cursor: string | undefined): Promise<ListPage>;
  /** Tasks matching `query`, oldest first, after the one with seq `after`: what a bulk action works through. */
  matching(query: TaskQuery, limit: number, after?: number): Promise<MatchedTask[]>;
  stats(queue: string | undefined): Promise<QueueCounts[]>;
  /** Every concurrency key with tasks waiting, per queue (or in one queue). */
  waitingKeys(queue: string | undefined): Promise<KeyCounts[]>;
  /** SCHEDULED tasks whose run_at has come → QUEUED. Returns how many. */
  promoteDue(now: number): Promise<number>;
  /** QUEUED/SCHEDULED tasks past their queue timeout → FAILED. */
  expireQueued(now: number): Promise<number>;
  /** RUNNING attempts whose lease expired or whose execution deadline passed. */
  overdue(now: number, limit: number): Promise<Array<AttemptRef & { reason: 'lease' | 'deadline'; owner?: string }>>;
  /** Counts tasks per state across all queues (for limits and metrics). */
  countByState(): Promise<Partial<Record<TaskState, number>>>;
  /** Per queue with QUEUED tasks, the earliest run_at among them (when its oldest waiting task became due). */
  oldestQueued(): Promise<Array<{ readonly queue: string; readonly dueAt: number }>>;
  subscribe(listener: TaskListener): () => void;
  /**
   * Deletes up to `limit` finished tasks whose retention ran out by `now`
   * (oldest expiry first; their idempotency keys are freed with them) and
   * publishes what it deleted as Deletions (cause `retention`). Returns how
   * many it deleted and how long the delete itself held the store, in ms (the
   * cleaner sizes its batches by it). Safe to run on several replicas at
   * once: no task is deleted twice.
   */
  deleteExpired(now: number, limit: number): Promise<{ readonly deleted: number; readonly busyMs: number }>;
  /** Calls `listener` with each commit's deletions (every replica's, on a networked store). */
  onDeleted(listener: DeletionListener): () => void;
  /**
   * Pauses a queue: claims (every replica's) skip its tasks until it is
   * resumed. Stored, so it outlives a restart. False when it was already paused.
   */
  pauseQueue(queue: string, now: number): Promise<boolean>;
  /** Resumes a paused queue. False when it was not paused. */
  resumeQueue(queue: string): Promise<boolean>;
  /** The queues paused now. */
  pausedQueues(): Promise<string[]>;
  /** Calls `listener` after a pause or resume commits, this server's or (networked store) another's. */
  onQueuePause(listener: (queue: string, paused: boolean) => void): () => void;
  /**
   * Deletes a finished task (`transitions.delete`) and publishes it as a
   * Deletion (cause `request`); returns the task as it was. NOT_FOUND for no such task,
   * FAILED_PRECONDITION naming the state of one not finished. Its idempotency
   * key is freed.
   */
  delete(id: string): Promise<TaskRecord>;
  /** Deletes up to `request.limit` finished tasks of a queue in one commit, publishing them as Deletions (cause `request`). Returns how many. */
  purge(request: PurgeRequest): Promise<number>;
  /** Every replica's worker sessions, for a store shared by replicas; absent for a store one server owns. */
  readonly workers?: SharedWorkers;
  /**
   * Calls `listener` with why when writes start failing for want of the
   * store itself (a full disk, an unreachable database; refusals such as a
   * stale attempt do not count), and with undefined when a commit succeeds
   * again. Health reports follow it.
   */
  onWriteHealth(listener: (failure: Error | undefined) => void): () => void;
  /** Calls `listener` after each commit with its duration in seconds and how many writes it carried. */
  onCommit(listener: (seconds: number, writes: number) => void): () => void;
  close(): Promise<void>;
}
