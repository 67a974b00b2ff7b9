import type { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskState as S } from '../../gen/ts/taskwire/v1/task.js';
import { isTerminal } from './transitions.js';
import type { QueueCounts, TaskEnd, TaskErrorRecord, TaskOptionsRecord, TaskRecord } from './types.js';

/*
 * Row decoding: the rows both drivers return, and the records, outcomes and
 * counts read from them. What a change publishes is in events.ts, a new
 * task's columns in inserts.ts, list pages in cursor.ts, what to write in
 * decisions.ts.
 */

/** A row of `tasks` as both drivers return it (the PostgreSQL store selects errors as text and BIGINTs as numbers). */
export interface TaskRow {
  seq: number;
  id: string;
  type: string;
  queue: string;
  state: number;
  priority: number;
  input_type: string;
  input: Buffer;
  output_type: string | null;
  output: Buffer | null;
  labels: string | null;
  trace_context: string | null;
  max_attempts: number;
  backoff: string;
  execution_timeout_ms: number | null;
  queue_timeout_ms: number | null;
  idempotency_key: string | null;
  attempt: number;
  failures: number;
  errors: string;
  run_at: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  worker_id: string | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  deadline_at: number | null;
  progress_percent: number;
  progress_message: string;
  cancel_reason: string | null;
  retain_succeeded_ms: number | null;
  retain_failed_ms: number | null;
  retain_cancelled_ms: number | null;
  concurrency_key: string | null;
  concurrency_limit: number | null;
}

/** The columns `Store.outcome` reads: the last error only for a failed task. */
export interface OutcomeRow {
  state: number;
  attempt: number;
  output_type: string | null;
  output: Buffer | null;
  error: string | null;
}

/** `SELECT … AS error` for an OutcomeRow, given the expression for the last element of `errors`. */
export const outcomeColumns = (lastError: string) =>
  `state, attempt, output_type, output, CASE WHEN state = ${S.TASK_STATE_FAILED} THEN ${lastError} END AS error`;

/**
 * Per queue with QUEUED tasks, the earliest run_at among them, in SQL both
 * stores speak. Neither SQLite nor PostgreSQL skips through an index for
 * `GROUP BY queue`, so the queues are walked one `MIN(queue) > previous` at a
 * time and each one's MIN(run_at) read from the head of `tasks_queued_due`:
 * a few index steps per queue however many tasks wait.
 */
export const OLDEST_QUEUED_SQL = `
  WITH RECURSIVE queues (queue) AS (
    SELECT MIN(queue) FROM tasks WHERE state = ${S.TASK_STATE_QUEUED}
    UNION ALL
    SELECT (SELECT MIN(t.queue) FROM tasks t WHERE t.state = ${S.TASK_STATE_QUEUED} AND t.queue > q.queue)
    FROM queues q WHERE q.queue IS NOT NULL
  )
  SELECT q.queue AS queue, (SELECT MIN(t.run_at) FROM tasks t WHERE t.state = ${S.TASK_STATE_QUEUED} AND t.queue = q.queue) AS due
  FROM queues q WHERE q.queue IS NOT NULL`;

export function toTaskEnd(id: string, row: OutcomeRow): TaskEnd | 'live' {
  if (!isTerminal(row.state)) return 'live';
  return {
    id,
    state: row.state as TaskState,
    attempt: row.attempt,
    ...(row.output_type === null || row.output === null ? {} : { output: { typeUrl: row.output_type, value: row.output } }),
    ...(row.error === null ? {} : { error: JSON.parse(row.error) as TaskErrorRecord }),
  };
}

/** Rows of (queue, state, count) grouped into `Store.stats`'s answer, queues in the order given. */
export function queueCounts(rows: ReadonlyArray<{ queue: string; state: TaskState; n: number }>): QueueCounts[] {
  const byQueue = new Map<string, Partial<Record<TaskState, number>>>();
  for (const row of rows) {
    const counts = byQueue.get(row.queue) ?? {};
    counts[row.state] = row.n;
    byQueue.set(row.queue, counts);
  }
  return [...byQueue].map(([queue, counts]) => ({ queue, counts }));
}

/** A RUNNING attempt past its lease or its deadline, as `Store.overdue` reads it. */
export interface OverdueRow {
  id: string;
  attempt: number;
  lease_owner: string | null;
}

export const overdueAttempt = (reason: 'lease' | 'deadline') => (row: OverdueRow) => ({
  id: row.id,
  attempt: row.attempt,
  reason,
  ...(row.lease_owner === null ? {} : { owner: row.lease_owner }),
});

const orUndefined = <T>(value: T | null): T | undefined => (value === null ? undefined : value);

export function toRecord(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    type: row.type,
    state: row.state as TaskState,
    input: { typeUrl: row.input_type, value: row.input },
    ...(row.output_type === null || row.output === null
      ? {}
      : { output: { typeUrl: row.output_type, value: row.output } }),
    options: {
      queue: row.queue,
      priority: row.priority,
      maxAttempts: row.max_attempts,
      backoff: JSON.parse(row.backoff) as TaskOptionsRecord['backoff'],
      ...(row.execution_timeout_ms === null ? {} : { executionTimeoutMs: row.execution_timeout_ms }),
      ...(row.queue_timeout_ms === null ? {} : { queueTimeoutMs: row.queue_timeout_ms }),
      ...(row.idempotency_key === null ? {} : { idempotencyKey: row.idempotency_key }),
      labels: row.labels === null ? {} : (JSON.parse(row.labels) as Record<string, string>),
      traceContext: row.trace_context === null ? {} : (JSON.parse(row.trace_context) as Record<string, string>),
      ...(row.retain_succeeded_ms === null
        ? {}
        : {
            retention: {
              succeededMs: row.retain_succeeded_ms,
              failedMs: row.retain_failed_ms ?? 0,
              cancelledMs: row.retain_cancelled_ms ?? 0,
            },
          }),
      ...(row.concurrency_key === null ? {} : { concurrencyKey: row.concurrency_key, concurrencyLimit: row.concurrency_limit ?? 1 }),
    },
    attempt: row.attempt,
    failures: row.failures,
    errors: JSON.parse(row.errors) as TaskErrorRecord[],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    runAt: row.run_at,
    startedAt: orUndefined(row.started_at),
    finishedAt: orUndefined(row.finished_at),
    workerId: orUndefined(row.worker_id),
    leaseOwner: orUndefined(row.lease_owner),
    leaseExpiresAt: orUndefined(row.lease_expires_at),
    deadlineAt: orUndefined(row.deadline_at),
    progressPercent: row.progress_percent,
    progressMessage: row.progress_message,
    cancelReason: orUndefined(row.cancel_reason),
  };
}
