import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { useEffect, useState } from 'preact/hooks';
import { TaskState } from '../gen/taskwire/v1/task_pb.js';

export const STATES: readonly TaskState[] = [TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED];

/** "queued", "running", …: the word shown and the CSS class of its colour. */
export const stateName = (state: TaskState): string => (TaskState[state] ?? 'unknown').toLowerCase();

export const State = ({ state }: { state: TaskState }) => <span class={`state state-${stateName(state)}`}>{stateName(state)}</span>;

export const isFinished = (state: TaskState) => state === TaskState.SUCCEEDED || state === TaskState.FAILED || state === TaskState.CANCELLED;

let now = Date.now();
const ticking = new Set<(n: number) => void>();
setInterval(() => {
  now = Date.now();
  for (const tick of ticking) tick(now);
}, 1000);

/** The current time, re-rendering the caller every second. */
export function useNow(): number {
  const [value, set] = useState(now);
  useEffect(() => {
    ticking.add(set);
    return () => void ticking.delete(set);
  }, []);
  return value;
}

export const dateOf = (t: Timestamp | undefined): Date | undefined => (t === undefined || (t.seconds === 0n && t.nanos === 0) ? undefined : timestampDate(t));

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** "3 s ago", the absolute time on hover. */
export function Ago({ at }: { at: Timestamp | undefined }) {
  useNow();
  const date = dateOf(at);
  if (date === undefined) return <span class="muted">—</span>;
  const ms = Date.now() - date.getTime();
  return (
    <time dateTime={date.toISOString()} title={date.toLocaleString()}>
      {ms > -2000 ? `${ago(ms)} ago` : `in ${ago(-ms)}`}
    </time>
  );
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export const Empty = ({ children }: { children: preact.ComponentChildren }) => <p class="empty">{children}</p>;
