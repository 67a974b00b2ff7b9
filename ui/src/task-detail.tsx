import { useEffect, useState } from 'preact/hooks';
import { TaskState, type Task } from '../gen/taskwire/v1/task_pb.js';
import type { TaskProgress } from '../gen/taskwire/v1/task_service_pb.js';
import { useAdmin } from './access.js';
import { api, taskJson, type TaskPayloads } from './api.js';
import { Ago, dateOf, duration, isFinished, State, useNow } from './format.js';
import { Problem } from './problem.js';

/** One task, live: the WatchTask stream sends every committed change and the running attempt's progress. */
export function TaskDetail({ id }: { id: string }) {
  const [task, setTask] = useState<Task | undefined>(undefined);
  const [progress, setProgress] = useState<TaskProgress | undefined>(undefined);
  const [payloads, setPayloads] = useState<TaskPayloads | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [acting, setActing] = useState<unknown>(undefined);
  const admin = useAdmin();
  useNow(); // the running duration counts up

  useEffect(() => {
    const controller = new AbortController();
    (async () => {
      // The stream ends when the task does; a retry starts it again, so loop while the page is open.
      while (!controller.signal.aborted) {
        for await (const event of api.watchTask({ id }, { signal: controller.signal })) {
          if (event.event.case === 'task') {
            const next = event.event.value;
            setTask(next);
            if (next.state !== TaskState.RUNNING) setProgress(undefined);
          } else if (event.event.case === 'progress') setProgress(event.event.value);
        }
        await new Promise((resolve) => setTimeout(resolve, 2000)); // a finished task: look again now and then
      }
    })().catch((e: unknown) => {
      if (!controller.signal.aborted) setError(e);
    });
    return () => controller.abort();
  }, [id]);

  // The payloads as JSON, read again when the state changes (an output appears on success).
  useEffect(() => {
    if (task === undefined) return;
    const controller = new AbortController();
    taskJson(id, controller.signal).then(setPayloads, () => undefined);
    return () => controller.abort();
  }, [id, task?.state, task?.attempt]);

  if (error !== undefined) return <Problem error={error} />;
  if (task === undefined) return <p class="muted">Loading task {id}…</p>;

  const act = async (what: 'cancel' | 'retry') => {
    setActing(undefined);
    try {
      const response = what === 'cancel' ? await api.cancelTask({ id, reason: 'cancelled from the dashboard' }) : await api.retryTask({ id });
      if (response.task !== undefined) setTask(response.task);
    } catch (e) {
      setActing(e);
    }
  };
  const start = dateOf(task.startTime);
  const finish = dateOf(task.finishTime);
  const traceparent = task.options?.traceContext.traceparent;
  const labels = Object.entries(task.options?.labels ?? {});
  return (
    <>
      <p>
        <a href="#/tasks">← Tasks</a>
      </p>
      <h1>
        Task <code>{task.id}</code> <State state={task.state} />
      </h1>
      <div class="actions">
        {!isFinished(task.state) && (
          <button type="button" class="danger" onClick={() => void act('cancel')}>
            Cancel task
          </button>
        )}
        {admin === true && (task.state === TaskState.FAILED || task.state === TaskState.CANCELLED) && (
          <button type="button" onClick={() => void act('retry')}>
            Retry task
          </button>
        )}
      </div>
      {acting !== undefined && <Problem error={acting} />}
      {task.state === TaskState.RUNNING && (
        <div class="progress" aria-live="polite">
          <progress max={100} value={progress?.percent ?? task.progressPercent} aria-label="progress" />
          <span data-testid="progress">
            {Math.round(progress?.percent ?? task.progressPercent)}% {progress?.message ?? task.progressMessage}
          </span>
        </div>
      )}
      <dl class="facts">
        <dt>Type</dt>
        <dd>
          <code>{task.type}</code>
        </dd>
        <dt>Queue</dt>
        <dd>{task.options?.queue}</dd>
        <dt>Attempt</dt>
        <dd>
          {task.attempt} of {task.options?.maxAttempts || '—'}
        </dd>
        <dt>Worker</dt>
        <dd>{task.workerId || '—'}</dd>
        <dt>Created</dt>
        <dd>
          <Ago at={task.createTime} />
        </dd>
        <dt>Duration</dt>
        <dd>{start === undefined ? '—' : duration((finish ?? new Date()).getTime() - start.getTime())}</dd>
        {task.cancelReason && (
          <>
            <dt>Cancel reason</dt>
            <dd>{task.cancelReason}</dd>
          </>
        )}
        <dt>Trace</dt>
        <dd>{traceparent ? <code>{traceparent.split('-')[1] ?? traceparent}</code> : '—'}</dd>
        <dt>Labels</dt>
        <dd>{labels.length === 0 ? '—' : labels.map(([k, v]) => <code class="label">{`${k}=${v}`}</code>)}</dd>
      </dl>
      <h2>Timeline</h2>
      <Timeline task={task} />
      <h2>Input</h2>
      <Json value={payloads?.input} />
      <h2>Output</h2>
      {isFinished(task.state) ? <Json value={payloads?.output} /> : <p class="muted">Not yet: the task has not finished.</p>}
    </>
  );
}

function Timeline({ task }: { task: Task }) {
  const rows: { at: Task['createTime']; what: string; detail?: string }[] = [{ at: task.createTime, what: 'submitted' }];
  for (const e of task.errors) {
    rows.push({ at: e.time, what: `attempt ${e.attempt} failed${e.retryable ? ' (retryable)' : ''}`, detail: `${e.workerId ? `on ${e.workerId}: ` : ''}${e.message}${e.code ? ` (code ${e.code})` : ''}` });
  }
  if (task.startTime !== undefined && task.attempt > 0) rows.push({ at: task.startTime, what: `attempt ${task.attempt} started`, ...(task.workerId ? { detail: `on ${task.workerId}` } : {}) });
  if (task.finishTime !== undefined && isFinished(task.state)) rows.push({ at: task.finishTime, what: TaskState[task.state]!.toLowerCase() });
  rows.sort((a, b) => (dateOf(a.at)?.getTime() ?? 0) - (dateOf(b.at)?.getTime() ?? 0));
  return (
    <ol class="timeline">
      {rows.map((r) => (
        <li>
          <Ago at={r.at} /> — <strong>{r.what}</strong>
          {r.detail !== undefined && <span class="detail"> {r.detail}</span>}
        </li>
      ))}
    </ol>
  );
}

function Json({ value }: { value: unknown }) {
  if (value === undefined) return <p class="muted">—</p>;
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
