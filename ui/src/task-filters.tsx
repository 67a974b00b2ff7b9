import { useState } from 'preact/hooks';
import { TaskState } from '../gen/taskwire/v1/task_pb.js';
import { isFiltered, labelsOf, SINCE, type ListFilters } from './filters.js';
import { STATES, stateName } from './format.js';

/** google.rpc.Code by number: what a task's last error is filtered on. */
const CODES = [
  'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];
const KEYS = ['queue', 'type', 'state', 'since', 'label', 'error', 'order'] as const;

/**
 * The task list's filter form; `onGo` gets the query to put in the URL. Selects apply at once.
 * Text fields are uncontrolled (the caller keys the form by the URL): the list re-renders every
 * poll, and a controlled field would lose what is being typed.
 */
export function TaskFilterForm({ filters, onGo }: { filters: ListFilters; onGo: (query: URLSearchParams) => void }) {
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const go = (form: HTMLFormElement) => {
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const key of KEYS) {
      const value = String(data.get(key) ?? '').trim();
      if (value !== '') next.set(key, value);
    }
    try {
      labelsOf(next.get('label') ?? '');
    } catch (e) {
      setProblem((e as Error).message);
      return;
    }
    setProblem(undefined);
    onGo(next);
  };
  const apply = (e: Event) => go((e.currentTarget as HTMLSelectElement).form!);
  return (
    <form
      class="filters"
      aria-label="filters"
      onSubmit={(e) => {
        e.preventDefault();
        go(e.currentTarget);
      }}
    >
      <label>
        Queue <input name="queue" defaultValue={filters.queue} placeholder="any" />
      </label>
      <label>
        Type <input name="type" defaultValue={filters.type} placeholder="any, e.g. demo.v1.DemoService/Sleep" />
      </label>
      <label>
        State
        <select name="state" value={filters.state === TaskState.UNSPECIFIED ? '' : stateName(filters.state)} onChange={apply}>
          <option value="">any</option>
          {STATES.map((s) => (
            <option value={stateName(s)}>{stateName(s)}</option>
          ))}
        </select>
      </label>
      <label>
        Created
        <select name="since" value={filters.since} onChange={apply}>
          <option value="">any time</option>
          {SINCE.map(([key, words]) => (
            <option value={key}>{words}</option>
          ))}
        </select>
      </label>
      <label>
        Label <input name="label" defaultValue={filters.label} placeholder="key=value" aria-invalid={problem !== undefined} />
      </label>
      <label>
        Error code
        <select name="error" value={filters.errorCode === 0 ? '' : String(filters.errorCode)} onChange={apply}>
          <option value="">any</option>
          {CODES.map((name, i) => (
            <option value={String(i + 1)}>{`${i + 1} ${name}`}</option>
          ))}
        </select>
      </label>
      <label>
        Order
        <select name="order" value={filters.oldestFirst ? 'oldest' : ''} onChange={apply}>
          <option value="">newest first</option>
          <option value="oldest">oldest first</option>
        </select>
      </label>
      <button type="submit">Filter</button>
      {(isFiltered(filters) || filters.oldestFirst) && <a href="#/tasks">Clear</a>}
      {problem !== undefined && (
        <p class="problem" role="alert">
          {problem}
        </p>
      )}
    </form>
  );
}
