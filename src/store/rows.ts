import type { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskState as S } from '../../gen/ts/taskwire/v1/task.js';
import { encodeCursor } from './cursor.js';
import { allows, isTerminal } from './transitions.js';
import type { Deletion, Lease, ListPage, NewTask, Payload, QueueCounts, TaskEnd, TaskErrorRecord, TaskEvent, TaskOptionsRecord, TaskRecord } from './types.js';

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

/** The row columns an attempt's end reads back: whose lease it was, and the task's type. */
export interface EndedAttemptRow {
  type: string;
  queue: string;
  lease_owner: string | null;
  started_at: number | null;
  concurrency_key: string | null;
}

/** The event of an attempt that left RUNNING: completed, failed, retried or released. */
export function attemptEnded(
  ref: { readonly id: string; readonly attempt: number },
  row: EndedAttemptRow,
  state: TaskState,
  now: number,
  result: { readonly output?: Payload; readonly error?: TaskErrorRecord } = {},
): TaskEvent {
  return {
    id: ref.id,
    type: row.type,
    queue: row.queue,
    state,
    attempt: ref.attempt,
    previous: S.TASK_STATE_RUNNING,
    ...(row.started_at === null ? {} : { startedAt: row.started_at }),
    finishedAt: now,
    ...result,
    ...(row.lease_owner === null ? {} : { owner: row.lease_owner }),
    ...(row.concurrency_key === null ? {} : { concurrencyKey: row.concurrency_key }),
  };
}

/** The rows one delete returned, as the Deletions it publishes: one per queue and state. */
export function deletions(rows: ReadonlyArray<{ queue: string; state: number }>, cause: Deletion['cause']): Deletion[] {
  const counts = new Map<string, Map<number, number>>();
  for (const row of rows) {
    const byState = counts.get(row.queue) ?? new Map<number, number>();
    byState.set(row.state, (byState.get(row.state) ?? 0) + 1);
    counts.set(row.queue, byState);
  }
  return [...counts].flatMap(([queue, byState]) => [...byState].map(([state, count]) => ({ queue, state: state as TaskState, count, cause })));
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

/** A page of `Store.list` from rows read with a limit of pageSize + 1, newest first. */
export function listPage(rows: readonly TaskRow[], pageSize: number, oldestFirst = false): ListPage {
  const page = rows.slice(0, pageSize);
  return {
    tasks: page.map(toRecord),
    ...(rows.length > pageSize ? { next: encodeCursor(page[page.length - 1]!.seq, oldestFirst) } : {}),
    after: (index) => encodeCursor(page[index]!.seq, oldestFirst),
  };
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

export function jsonOrNull(map: Readonly<Record<string, string>>): string | null {
  for (const _ in map) return JSON.stringify(map);
  return null;
}

/** Labels and trace context merged, as assignments carry them; null when empty. */
export function metadataJson(options: TaskOptionsRecord): string | null {
  return jsonOrNull({ ...options.labels, ...options.traceContext });
}

/** The columns a new task starts with: SCHEDULED, QUEUED, or RUNNING when dispatched at once. */
export function initialColumns(task: NewTask, now: number) {
  const o = task.options;
  const lease = task.runAt > now ? undefined : task.lease;
  return {
    state: task.runAt > now ? S.TASK_STATE_SCHEDULED : lease === undefined ? S.TASK_STATE_QUEUED : S.TASK_STATE_RUNNING,
    attempt: lease === undefined ? 0 : 1,
    leaseOwner: lease?.owner ?? null,
    workerId: lease?.workerId ?? null,
    leaseExpiresAt: lease === undefined ? null : now + lease.leaseMs,
    startedAt: lease === undefined ? null : now,
    deadlineAt: lease === undefined || o.executionTimeoutMs === undefined ? null : now + o.executionTimeoutMs,
    queueDeadlineAt: lease !== undefined || o.queueTimeoutMs === undefined ? null : Math.max(task.runAt, now) + o.queueTimeoutMs,
  };
}

/** The record of a task just inserted with `initialColumns`. */
export function insertedRecord(task: NewTask, columns: ReturnType<typeof initialColumns>, now: number): TaskRecord {
  return {
    id: task.id,
    type: task.type,
    state: columns.state,
    input: task.input,
    options: task.options,
    attempt: columns.attempt,
    failures: 0,
    errors: [],
    createdAt: now,
    updatedAt: now,
    runAt: task.runAt,
    ...(columns.startedAt === null ? {} : { startedAt: columns.startedAt }),
    ...(columns.workerId === null ? {} : { workerId: columns.workerId }),
    ...(columns.leaseOwner === null ? {} : { leaseOwner: columns.leaseOwner }),
    ...(columns.leaseExpiresAt === null ? {} : { leaseExpiresAt: columns.leaseExpiresAt }),
    ...(columns.deadlineAt === null ? {} : { deadlineAt: columns.deadlineAt }),
    progressPercent: 0,
    progressMessage: '',
  };
}

/** The lease a worker gets for a task dispatched at insert. */
export function leaseOf(record: TaskRecord): Lease {
  const metadata = { ...record.options.labels, ...record.options.traceContext };
  return {
    id: record.id,
    type: record.type,
    attempt: record.attempt,
    input: record.input,
    queue: record.options.queue,
    maxAttempts: record.options.maxAttempts,
    ...(record.deadlineAt === undefined ? {} : { deadlineAt: record.deadlineAt }),
    ...(Object.keys(metadata).length === 0 ? {} : { metadata }),
  };
}

/** The columns a claim returns, the same in every store. */
export interface ClaimedRow {
  id: string;
  type: string;
  attempt: number;
  input_type: string;
  input: Buffer;
  queue: string;
  max_attempts: number;
  deadline_at: number | null;
  metadata: string | null;
  run_at: number;
  started_at: number;
}

/** A claimed row as the lease a worker gets, and the event its claim publishes. */
export function claimed(row: ClaimedRow, events: TaskEvent[]): Lease {
  events.push({
    id: row.id,
    type: row.type,
    queue: row.queue,
    state: S.TASK_STATE_RUNNING,
    attempt: row.attempt,
    previous: S.TASK_STATE_QUEUED,
    dueAt: row.run_at,
    startedAt: row.started_at,
  });
  return {
    id: row.id,
    type: row.type,
    attempt: row.attempt,
    input: { typeUrl: row.input_type, value: row.input },
    queue: row.queue,
    maxAttempts: row.max_attempts,
    ...(row.deadline_at === null ? {} : { deadlineAt: row.deadline_at }),
    ...(row.metadata === null ? {} : { metadata: JSON.parse(row.metadata) as Record<string, string> }),
  };
}

/** The event an insert publishes; a task dispatched at once also starts its first attempt. */
export function insertedEvent(task: NewTask, columns: ReturnType<typeof initialColumns>, now: number): TaskEvent {
  return {
    id: task.id,
    type: task.type,
    queue: task.options.queue,
    state: columns.state,
    attempt: columns.attempt,
    previous: S.TASK_STATE_UNSPECIFIED,
    ...(columns.startedAt === null ? {} : { dueAt: task.runAt, startedAt: columns.startedAt }),
  };
}

/** `PurgeRequest.states`, checked: only states a task can be deleted from (they are written into SQL). */
export function purgeStates(states: readonly TaskState[]): TaskState[] {
  const sorted = [...new Set(states)].sort((a, b) => a - b);
  if (sorted.length === 0 || !sorted.every((state) => allows('delete', state))) {
    throw new Error(`purge states must be SUCCEEDED, FAILED or CANCELLED; got [${states.join(', ')}]`);
  }
  return sorted;
}
