import { TaskState as S } from '../../gen/ts/taskwire/v1/task.js';
import type { Lease, NewTask, TaskEvent, TaskOptionsRecord, TaskRecord } from './types.js';

/*
 * A new task: the columns it starts with, and the record, event and lease
 * both stores build from them without reading the row back.
 */

export function jsonOrNull(map: Readonly<Record<string, string>>): string | null {
  for (const _ in map) return JSON.stringify(map);
  return null;
}

/** Labels and trace context merged, as assignments carry them. */
function metadataOf(options: TaskOptionsRecord): Record<string, string> {
  return { ...options.labels, ...options.traceContext };
}

/** The same as JSON; null when empty. */
export function metadataJson(options: TaskOptionsRecord): string | null {
  return jsonOrNull(metadataOf(options));
}

/**
 * The columns a new task starts with: SCHEDULED, QUEUED, or RUNNING when
 * dispatched at once. A lease is due by its own start time, not by the
 * insert's clock: an attempt already sent to a worker is stored as sent even
 * if the clock stepped back meanwhile.
 */
export function initialColumns(task: NewTask, now: number) {
  const o = task.options;
  const startedAt = task.lease?.startedAt ?? now;
  const lease = task.runAt > startedAt ? undefined : task.lease;
  return {
    state: lease !== undefined ? S.TASK_STATE_RUNNING : task.runAt > now ? S.TASK_STATE_SCHEDULED : S.TASK_STATE_QUEUED,
    attempt: lease === undefined ? 0 : 1,
    leaseOwner: lease?.owner ?? null,
    workerId: lease?.workerId ?? null,
    leaseExpiresAt: lease === undefined ? null : now + lease.leaseMs,
    startedAt: lease === undefined ? null : startedAt,
    deadlineAt: lease === undefined || o.executionTimeoutMs === undefined ? null : startedAt + o.executionTimeoutMs,
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

/**
 * The lease of a task's first attempt, started at `startedAt`, built from the
 * task itself: what `leaseOf` gives for the record its insert will store with
 * `lease.startedAt` set to the same time. To send before the insert commits.
 */
export function firstLease(task: NewTask, startedAt: number): Lease {
  const timeout = task.options.executionTimeoutMs;
  return lease(task.id, task.type, 1, task.input, task.options, timeout === undefined ? undefined : startedAt + timeout);
}

/** The lease a worker gets for a task dispatched at insert. */
export function leaseOf(record: TaskRecord): Lease {
  return lease(record.id, record.type, record.attempt, record.input, record.options, record.deadlineAt);
}

function lease(id: string, type: string, attempt: number, input: Lease['input'], options: TaskOptionsRecord, deadlineAt: number | undefined): Lease {
  const metadata = metadataOf(options);
  return {
    id,
    type,
    attempt,
    input,
    queue: options.queue,
    maxAttempts: options.maxAttempts,
    ...(deadlineAt === undefined ? {} : { deadlineAt }),
    ...(Object.keys(metadata).length === 0 ? {} : { metadata }),
  };
}
