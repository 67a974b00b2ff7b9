import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { failedPrecondition, type TaskwireError } from '../errors.js';
import { exponentialBackoff } from './backoff.js';
import { allows, stateIn, stateName, transitions, type Transition } from './transitions.js';
import type { BackoffPolicy, TaskErrorRecord, TaskEvent, TaskRecord } from './types.js';

/**
 * What a store writes, decided once. Every function here is pure: it takes
 * the row as the store read it (under its lock, or inside its synchronous
 * write) and returns what to write and what to publish. Each store only
 * executes the decision against its row, fenced ("set state if still
 * RUNNING"), as River's drivers execute its retry policy; the SQL of both
 * stores is the same few columns set from the decision.
 */

/** The column holding a task's retention in each end state. */
const RETENTION_COLUMN = {
  [TaskState.TASK_STATE_SUCCEEDED]: 'retain_succeeded_ms',
  [TaskState.TASK_STATE_FAILED]: 'retain_failed_ms',
  [TaskState.TASK_STATE_CANCELLED]: 'retain_cancelled_ms',
} as const;

type EndState = keyof typeof RETENTION_COLUMN;

/** When a task that ends at `now` is deleted: never (null) when its retention is unset or 0 (keep forever). */
export function retentionExpiry(now: number, retentionMs: number | null | undefined): number | null {
  return retentionMs === null || retentionMs === undefined || retentionMs === 0 ? null : now + retentionMs;
}

/**
 * `retentionExpiry` in SQL, for the statements that end many rows at once
 * (complete, cancel, the queue timeout): `now` is the SQL expression of the
 * end time, in either dialect.
 */
export function retentionExpirySql(now: string, state: EndState): string {
  return `${now} + NULLIF(${RETENTION_COLUMN[state]}, 0)`;
}

/** The error an attempt's failure adds to its task's history. */
export function errorRecord(
  item: { readonly attempt: number; readonly message: string; readonly code: number; readonly retryable: boolean; readonly workerId?: string },
  now: number,
): TaskErrorRecord {
  return {
    attempt: item.attempt,
    message: item.message,
    code: item.code,
    retryable: item.retryable,
    ...(item.workerId === undefined ? {} : { workerId: item.workerId }),
    time: now,
  };
}

/** The error of a task whose queue timeout ran out before it started (code 4: DEADLINE_EXCEEDED). */
export const queueTimeoutError = (attempt: number, now: number): TaskErrorRecord =>
  errorRecord({ attempt, message: 'queue timeout: the task did not start in time', code: 4, retryable: false }, now);

/** The columns of a RUNNING attempt the fail decision reads, as both drivers return them. */
export interface FailingRow {
  readonly failures: number;
  readonly max_attempts: number;
  /** JSON of a BackoffPolicy, as stored. */
  readonly backoff: string;
  readonly retain_failed_ms: number | null;
}

/** What a failed attempt writes: retried after a backoff, or the dead letter. */
export interface FailDecision {
  /** SCHEDULED (retry) or FAILED (dead letter). */
  readonly state: TaskState;
  /** Appended to `errors`; `failures` grows by one either way. */
  readonly error: TaskErrorRecord;
  /** The retry's run time; null for the dead letter (run_at is kept). */
  readonly runAt: number | null;
  /** `now` for the dead letter; null for a retry (finished_at is kept). */
  readonly finishedAt: number | null;
  /** The dead letter's retention expiry; null for a retry or when kept forever. */
  readonly expiresAt: number | null;
}

/**
 * A failed attempt: the dead letter when it is not retryable or its task has
 * used `max_attempts` failures, otherwise a retry after the task's own backoff.
 */
export function decideFail(
  item: { readonly attempt: number; readonly message: string; readonly code: number; readonly retryable: boolean; readonly workerId?: string },
  row: FailingRow,
  now: number,
): FailDecision {
  const error = errorRecord(item, now);
  const failures = row.failures + 1;
  if (!item.retryable || failures >= row.max_attempts) {
    return { state: transitions.fail.to, error, runAt: null, finishedAt: now, expiresAt: retentionExpiry(now, row.retain_failed_ms) };
  }
  const backoff = JSON.parse(row.backoff) as BackoffPolicy;
  return { state: transitions.retry.to, error, runAt: now + exponentialBackoff(failures, backoff), finishedAt: null, expiresAt: null };
}

/** "A, B or C". */
const names = (states: readonly TaskState[]) => {
  const words = states.map(stateName);
  return words.length === 1 ? words[0]! : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
};

const REFUSALS = {
  cancel: 'can be cancelled',
  revive: 'can be retried',
  delete: 'can be deleted: cancel it first',
} as const satisfies Partial<Record<Transition, string>>;

/** The error for a task the transition may not leave, naming the states it may. */
export function refusal(transition: keyof typeof REFUSALS, task: { readonly id: string; readonly state: TaskState }): TaskwireError {
  return failedPrecondition(
    `task ${task.id} is ${stateName(task.state)}; only ${names(transitions[transition].from)} tasks ${REFUSALS[transition]}`,
  );
}

/** Throws the refusal when `transition` may not leave the task's state. */
export function mustAllow(transition: keyof typeof REFUSALS, task: { readonly id: string; readonly state: TaskState }): void {
  if (!allows(transition, task.state)) throw refusal(transition, task);
}

/**
 * CancelTask on the task as read: refused unless SCHEDULED, QUEUED or
 * RUNNING; otherwise the event its cancel publishes. A running attempt's
 * owner is named so the broker can tell its worker.
 */
export function decideCancel(before: TaskRecord, now: number): TaskEvent {
  mustAllow('cancel', before);
  const running = before.state === TaskState.TASK_STATE_RUNNING;
  return {
    id: before.id,
    type: before.type,
    queue: before.options.queue,
    state: transitions.cancel.to,
    attempt: before.attempt,
    previous: before.state,
    ...(running && before.leaseOwner !== undefined ? { owner: before.leaseOwner } : {}),
    ...(running && before.startedAt !== undefined ? { startedAt: before.startedAt } : {}),
    ...(before.options.concurrencyKey === undefined ? {} : { concurrencyKey: before.options.concurrencyKey }),
    finishedAt: now,
  };
}

/** RetryTask on the task as read: refused unless FAILED or CANCELLED; otherwise the event its revive publishes. */
export function decideRevive(before: TaskRecord): TaskEvent {
  mustAllow('revive', before);
  return {
    id: before.id,
    type: before.type,
    queue: before.options.queue,
    state: transitions.revive.to,
    attempt: before.attempt,
    previous: before.state,
  };
}

/**
 * Paused queues. `queue_pauses` is the authority: every claim checks it in
 * its own statement, so a claim racing a pause is still right. The `paused`
 * flag of a QUEUED task is what keeps a paused backlog out of the ready
 * index a claim walks: tasks_ready holds only `READY` rows, and the claim
 * repeats `READY` word for word (SQLite uses a partial index only then).
 *
 * The rule, owned here: every write that puts a task in QUEUED (insert,
 * promote, release, revive; a retry comes back through promote) sets the
 * flag to `queuePausedSql` of its queue, in the same statement; a pause
 * flags the queue's QUEUED tasks after it commits, a resume clears them
 * before its row goes, both FLAG_BATCH per commit. The flag means nothing in
 * other states (a task leaving QUEUED keeps it; entering again rewrites it).
 */
export const READY = `${stateIn(transitions.claim.from)} AND NOT paused`;

/** Flags set or cleared per commit by a pause or resume, so each holds the store only briefly. */
export const FLAG_BATCH = 500;

/**
 * Whether the queue (an SQL expression) is paused, for the flag. On
 * PostgreSQL it locks the pause row (FOR KEY SHARE) so a resume's delete
 * waits for this write to commit, and then clears what it flagged (see
 * `resumeQueue` there); a write that waited on the delete finds no row.
 */
export function queuePausedSql(dialect: 'sqlite' | 'postgres', queue: string): string {
  return `EXISTS (SELECT 1 FROM queue_pauses p WHERE p.queue = ${queue}${dialect === 'postgres' ? ' FOR KEY SHARE' : ''})`;
}

/** `PurgeRequest.states`, checked: only states a task can be deleted from (they are written into SQL). */
export function purgeStates(states: readonly TaskState[]): TaskState[] {
  const sorted = [...new Set(states)].sort((a, b) => a - b);
  if (sorted.length === 0 || !sorted.every((state) => allows('delete', state))) {
    throw new Error(`purge states must be SUCCEEDED, FAILED or CANCELLED; got [${states.join(', ')}]`);
  }
  return sorted;
}
