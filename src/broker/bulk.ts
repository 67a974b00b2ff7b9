import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, invalidArgument, TaskwireError } from '../errors.js';
import { stateName, statesOf, transitions, type Store, type TaskQuery, type TaskRecord } from '../store/index.js';

/** Tasks one bulk call may change: the default and the most. */
export const BULK_LIMITS = { defaultLimit: 1_000, maxLimit: 10_000 } as const;
/**
 * Tasks changed per commit. Each batch is one short transaction of the
 * single-task writes (issued in one turn, so the group commit joins them),
 * and between batches the hot path's writes get their turn.
 */
export const BULK_BATCH = 100;

export interface BulkOptions {
  readonly dryRun: boolean;
  /** 0: the default. */
  readonly limit: number;
}

export interface BulkResult {
  /** Tasks changed (a dry run: that would be, up to the limit). */
  readonly count: number;
  /** Matching tasks remain beyond this call. */
  readonly more: boolean;
}

/**
 * A bulk action: the tasks matching `query` in the states the action's
 * transition leaves, each changed by `apply`, the single-task write (so the
 * store decides, per task, exactly as for one, and publishes the same
 * events: queue counts, dispatch, watchers and running handlers follow).
 */
export async function bulkAction(
  store: Store,
  transition: 'cancel' | 'revive',
  query: TaskQuery,
  options: BulkOptions,
  apply: (id: string) => Promise<TaskRecord>,
): Promise<BulkResult> {
  const limit = checkLimit(options.limit);
  const scoped = { ...query, states: statesFor(transition, query) };
  if (options.dryRun) {
    const found = await store.matching(scoped, limit + 1);
    return { count: Math.min(found.length, limit), more: found.length > limit };
  }
  let count = 0;
  let after: number | undefined;
  while (count < limit) {
    const batch = await store.matching(scoped, Math.min(BULK_BATCH, limit - count), after);
    if (batch.length === 0) break;
    // Keyset by seq: a task changed and back in a matching state (failed again) is not taken twice in one call.
    after = batch[batch.length - 1]!.seq;
    const results = await Promise.allSettled(batch.map((task) => apply(task.id)));
    for (const result of results) {
      if (result.status === 'fulfilled') count++;
      else if (!isGone(result.reason)) throw result.reason;
    }
  }
  const more = (await store.matching(scoped, 1)).length > 0;
  return { count, more };
}

/** Between selection and write the task moved on (or was deleted): not an error, just not changed. */
const isGone = (error: unknown) =>
  error instanceof TaskwireError && (error.code === Code.FAILED_PRECONDITION || error.code === Code.NOT_FOUND);

function checkLimit(limit: number): number {
  if (limit === 0) return BULK_LIMITS.defaultLimit;
  if (!Number.isInteger(limit) || limit < 0 || limit > BULK_LIMITS.maxLimit) {
    throw invalidArgument(`limit must be 1..${BULK_LIMITS.maxLimit} (0: ${BULK_LIMITS.defaultLimit}); got ${limit}: call again while more is true`);
  }
  return limit;
}

/** The filter's states, which must be ones the action applies to; none given: all of those. */
function statesFor(transition: 'cancel' | 'revive', query: TaskQuery): readonly TaskState[] {
  const from: readonly TaskState[] = transitions[transition].from;
  const asked = statesOf(query) ?? [];
  const wrong = asked.find((state) => !from.includes(state));
  if (wrong !== undefined) {
    throw invalidArgument(
      `filter.states names ${stateName(wrong)}, which this action does not apply to: give only ${from.map(stateName).join(', ')}`,
    );
  }
  return asked.length > 0 ? asked : from;
}
