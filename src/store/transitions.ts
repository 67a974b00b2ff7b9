import { TaskState } from '../../gen/ts/taskwire/v1/task.js';

/**
 * The task state machine, written down once. A task enters it by insert:
 * SCHEDULED (run_at later), QUEUED, or RUNNING with attempt 1 when it is
 * dispatched at once to a worker with a free slot (insert and claim in one
 * write, only when nothing of its type waits, so FIFO holds). Every store implements exactly
 * these transitions (its WHERE clauses use `from`), and the shared store
 * conformance suite checks each of them against every backend.
 */
export const transitions = {
  /** run_at reached. */
  promote: { from: [TaskState.TASK_STATE_SCHEDULED], to: TaskState.TASK_STATE_QUEUED },
  /** A worker with a free slot takes it: attempt += 1, a lease starts. */
  claim: { from: [TaskState.TASK_STATE_QUEUED], to: TaskState.TASK_STATE_RUNNING },
  /** The current attempt returned an output. */
  complete: { from: [TaskState.TASK_STATE_RUNNING], to: TaskState.TASK_STATE_SUCCEEDED },
  /** The current attempt failed (or lost its lease) with attempts left: wait out the backoff. */
  retry: { from: [TaskState.TASK_STATE_RUNNING], to: TaskState.TASK_STATE_SCHEDULED },
  /** The current attempt failed with no attempts left, or not retryable: the dead letter. */
  fail: { from: [TaskState.TASK_STATE_RUNNING], to: TaskState.TASK_STATE_FAILED },
  /** The worker handed the attempt back (shutting down): queued again, not counted as a failure. */
  release: { from: [TaskState.TASK_STATE_RUNNING], to: TaskState.TASK_STATE_QUEUED },
  /** The queue timeout passed before the task started. */
  expire: { from: [TaskState.TASK_STATE_SCHEDULED, TaskState.TASK_STATE_QUEUED], to: TaskState.TASK_STATE_FAILED },
  /** CancelTask or a gateway caller gave up. */
  cancel: {
    from: [TaskState.TASK_STATE_SCHEDULED, TaskState.TASK_STATE_QUEUED, TaskState.TASK_STATE_RUNNING],
    to: TaskState.TASK_STATE_CANCELLED,
  },
  /** RetryTask: back to the queue with a fresh attempt budget. */
  revive: { from: [TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELLED], to: TaskState.TASK_STATE_QUEUED },
  /** DeleteTask, PurgeQueue (and the retention cleaner): the row is gone, published as a Deletion; its idempotency key is free. */
  delete: {
    from: [TaskState.TASK_STATE_SUCCEEDED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELLED],
    to: TaskState.TASK_STATE_UNSPECIFIED,
  },
} as const;

export type Transition = keyof typeof transitions;

export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  TaskState.TASK_STATE_SUCCEEDED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELLED,
]);

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}

/**
 * The SQL condition for a set of states: `state = 2`, or `state IN (1, 2)`.
 * Written exactly as the partial indexes' WHERE clauses are, since SQLite
 * uses a partial index only for a query whose WHERE visibly implies the index's.
 */
export function stateIn(states: readonly TaskState[]): string {
  return states.length === 1 ? `state = ${states[0]}` : `state IN (${states.join(', ')})`;
}

/** Whether `transition` may leave `state`. */
export function allows(transition: Transition, state: TaskState): boolean {
  return (transitions[transition].from as readonly TaskState[]).includes(state);
}

/** "TASK_STATE_QUEUED" → "QUEUED", for messages. */
export function stateName(state: TaskState): string {
  return (TaskState[state] ?? String(state)).replace('TASK_STATE_', '');
}
