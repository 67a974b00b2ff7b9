import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { TaskState } from '../gen/taskwire/v1/task_pb.js';
import { TaskOrder, type ListTasksRequestSchema, type TaskFilterSchema } from '../gen/taskwire/v1/task_service_pb.js';
import { STATES, stateName } from './format.js';

/** "Created in the last …": the choices, as kept in the URL (`since=1h`). */
export const SINCE: ReadonlyArray<readonly [string, string, number]> = [
  ['15m', 'last 15 minutes', 15 * 60_000],
  ['1h', 'last hour', 3_600_000],
  ['24h', 'last 24 hours', 86_400_000],
  ['7d', 'last 7 days', 7 * 86_400_000],
];

/** The task list's filters: the URL's query (`#/tasks?queue=mail&state=failed&label=tenant=a`). */
export interface ListFilters {
  readonly queue: string;
  readonly type: string;
  readonly state: TaskState;
  /** A key of SINCE, or '' for any time. */
  readonly since: string;
  /** "key=value", several joined by commas; '' for none. */
  readonly label: string;
  /** A google.rpc.Code of the last error; 0 for any. */
  readonly errorCode: number;
  readonly oldestFirst: boolean;
}

export function filtersFrom(query: URLSearchParams): ListFilters {
  const code = Number(query.get('error') ?? '0');
  return {
    queue: query.get('queue') ?? '',
    type: query.get('type') ?? '',
    state: STATES.find((s) => stateName(s) === query.get('state')) ?? TaskState.UNSPECIFIED,
    since: SINCE.some(([key]) => key === query.get('since')) ? query.get('since')! : '',
    label: query.get('label') ?? '',
    errorCode: Number.isInteger(code) && code > 0 && code <= 16 ? code : 0,
    oldestFirst: query.get('order') === 'oldest',
  };
}

/** The labels of "k=v,k2=v2"; an Error naming the field when a part has no "=" or no key. */
export function labelsOf(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const at = part.indexOf('=');
    if (at <= 0) throw new Error(`Label: "${part}" is not key=value (e.g. tenant=acme; several joined by commas).`);
    labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}

/** The fields both ListTasks and the bulk actions' TaskFilter take, as of `now`. */
function common(f: ListFilters, now: number) {
  const since = SINCE.find(([key]) => key === f.since);
  let labels: Record<string, string> = {};
  try {
    labels = labelsOf(f.label);
  } catch {
    // The form refuses such a label; one typed into the URL by hand is ignored.
  }
  return {
    queue: f.queue,
    type: f.type,
    labels,
    errorCode: f.errorCode,
    ...(since === undefined ? {} : { createdSince: timestampFromMs(now - since[2]) }),
  };
}

export function listRequestOf(f: ListFilters, now: number): MessageInitShape<typeof ListTasksRequestSchema> {
  return { ...common(f, now), state: f.state, order: f.oldestFirst ? TaskOrder.OLDEST_FIRST : TaskOrder.NEWEST_FIRST };
}

/** The list's filters as a bulk action's TaskFilter: the tasks the list shows, as of `now`. */
export function taskFilterOf(f: ListFilters, now: number): MessageInitShape<typeof TaskFilterSchema> {
  return { ...common(f, now), states: f.state === TaskState.UNSPECIFIED ? [] : [f.state] };
}

export const isFiltered = (f: ListFilters) =>
  f.queue !== '' || f.type !== '' || f.state !== TaskState.UNSPECIFIED || f.since !== '' || f.label !== '' || f.errorCode !== 0;
