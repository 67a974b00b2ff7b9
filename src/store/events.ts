import type { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskState as S } from '../../gen/ts/taskwire/v1/task.js';
import type { Deletion, Lease, Payload, TaskErrorRecord, TaskEvent } from './types.js';

/*
 * What a committed change publishes, built from the columns a statement
 * returned: the same events from both stores, so the broker cannot tell them apart.
 */

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
