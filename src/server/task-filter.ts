import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskOrder, type ListTasksRequest, type TaskFilter } from '../../gen/ts/taskwire/v1/task_service.js';
import { invalidArgument } from '../errors.js';
import type { ListFilter, TaskQuery } from '../store/index.js';

/** The filter fields TaskFilter and ListTasksRequest share, by the same names. */
type FilterFields = Pick<TaskFilter, 'queue' | 'type' | 'states' | 'createdSince' | 'createdBefore' | 'finishedSince' | 'finishedBefore' | 'labels' | 'errorCode'>;

const MAX_LABELS = 16;
const MAX_TEXT = 256;
const MAX_CODE = 16; // google.rpc.Code: 1..16 (0 is OK, which is no error)

/** Field names as the contract spells them, for errors. */
const FIELD = {
  states: 'states',
  createdSince: 'created_since',
  createdBefore: 'created_before',
  finishedSince: 'finished_since',
  finishedBefore: 'finished_before',
  labels: 'labels',
  errorCode: 'error_code',
} as const;

function time(prefix: string, name: keyof typeof FIELD, value: Date | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value.getTime();
  if (!Number.isFinite(ms) || ms < 0) throw invalidArgument(`${prefix}${FIELD[name]} must be a time after 1970 and before the year 275760`);
  return ms;
}

function state(prefix: string, value: TaskState): TaskState {
  if (value === TaskState.TASK_STATE_UNSPECIFIED || TaskState[value] === undefined || value === TaskState.UNRECOGNIZED) {
    throw invalidArgument(`${prefix}states has ${value}, which is not a TaskState: use 1 (SCHEDULED) .. 6 (CANCELLED)`);
  }
  return value;
}

function text(field: string, value: string): void {
  if (value.length > MAX_TEXT) throw invalidArgument(`${field} is ${value.length} characters long; at most ${MAX_TEXT}`);
}

/**
 * The one reading of a filter, for ListTasks and the bulk actions alike:
 * each field checked (an error names it, under `prefix`), ranges in order.
 */
export function toTaskQuery(fields: FilterFields, prefix = ''): TaskQuery {
  text(`${prefix}queue`, fields.queue);
  text(`${prefix}type`, fields.type);
  const states = fields.states.map((s) => state(prefix, s));
  const createdSince = time(prefix, 'createdSince', fields.createdSince);
  const createdBefore = time(prefix, 'createdBefore', fields.createdBefore);
  const finishedSince = time(prefix, 'finishedSince', fields.finishedSince);
  const finishedBefore = time(prefix, 'finishedBefore', fields.finishedBefore);
  for (const [since, before, name] of [
    [createdSince, createdBefore, 'created'],
    [finishedSince, finishedBefore, 'finished'],
  ] as const) {
    if (since !== undefined && before !== undefined && since >= before) {
      throw invalidArgument(`${prefix}${name}_since must be earlier than ${prefix}${name}_before: the range [since, before) is empty`);
    }
  }
  const labels = Object.entries(fields.labels);
  if (labels.length > MAX_LABELS) throw invalidArgument(`${prefix}labels has ${labels.length} entries; at most ${MAX_LABELS}`);
  for (const [key, value] of labels) {
    if (key === '') throw invalidArgument(`${prefix}labels has an empty key`);
    text(`${prefix}labels key "${key.slice(0, 40)}"`, key);
    text(`${prefix}labels["${key}"]`, value);
  }
  if (fields.errorCode < 0 || fields.errorCode > MAX_CODE) {
    throw invalidArgument(`${prefix}error_code must be a google.rpc.Code, 1..${MAX_CODE} (0: any); got ${fields.errorCode}`);
  }
  return {
    ...(fields.queue === '' ? {} : { queue: fields.queue }),
    ...(fields.type === '' ? {} : { type: fields.type }),
    ...(states.length === 0 ? {} : { states: [...new Set(states)] }),
    ...(createdSince === undefined ? {} : { createdSince }),
    ...(createdBefore === undefined ? {} : { createdBefore }),
    ...(finishedSince === undefined ? {} : { finishedSince }),
    ...(finishedBefore === undefined ? {} : { finishedBefore }),
    ...(labels.length === 0 ? {} : { labels: Object.fromEntries(labels) }),
    ...(fields.errorCode === 0 ? {} : { errorCode: fields.errorCode }),
  };
}

/** A bulk action's filter: required, and not empty (acting on every task must be asked for by naming states). */
export function bulkQuery(filter: TaskFilter | undefined): TaskQuery {
  const query = filter === undefined ? {} : toTaskQuery(filter, 'filter.');
  if (Object.keys(query).length === 0) {
    throw invalidArgument('filter is empty: set at least one of queue, type, states, a time range, labels or error_code');
  }
  return query;
}

/** ListTasks' filter: the shared fields, the older single `state`, and the order. */
export function listFilter(request: ListTasksRequest): ListFilter {
  if (request.state !== TaskState.TASK_STATE_UNSPECIFIED && request.states.length > 0) {
    throw invalidArgument('set state or states, not both: states takes several');
  }
  if (request.state !== TaskState.TASK_STATE_UNSPECIFIED && (TaskState[request.state] === undefined || request.state === TaskState.UNRECOGNIZED)) {
    throw invalidArgument(`state ${request.state} is not a TaskState`);
  }
  const states = request.state === TaskState.TASK_STATE_UNSPECIFIED ? request.states : [request.state];
  if (request.order !== TaskOrder.TASK_ORDER_UNSPECIFIED && request.order !== TaskOrder.TASK_ORDER_NEWEST_FIRST && request.order !== TaskOrder.TASK_ORDER_OLDEST_FIRST) {
    throw invalidArgument(`order ${request.order} is not a TaskOrder: use TASK_ORDER_NEWEST_FIRST (1) or TASK_ORDER_OLDEST_FIRST (2)`);
  }
  return {
    ...toTaskQuery({ ...request, states }),
    ...(request.order === TaskOrder.TASK_ORDER_OLDEST_FIRST ? { order: 'oldest' } : {}),
  };
}
