import { isTerminal, type TaskEvent, type TaskRecord } from '../store/index.js';
import type { TaskSubscriptions } from './subscriptions.js';

export type WatchEvent =
  | { readonly kind: 'task'; readonly task: TaskRecord }
  | { readonly kind: 'progress'; readonly attempt: number; readonly percent: number; readonly message: string; readonly time: number };

/**
 * One task's committed changes and progress, until it is terminal or the
 * signal aborts: the task as it is now first, then one event per change. A
 * burst of state changes is read back once; under a flood of progress only
 * the latest is kept.
 */
export async function* watchTask(
  id: string,
  signal: AbortSignal,
  subscriptions: TaskSubscriptions,
  get: (id: string) => Promise<TaskRecord>,
): AsyncGenerator<WatchEvent> {
  const queue: TaskEvent[] = [];
  let wake: (() => void) | undefined;
  const stop = subscriptions.add(id, (event) => {
    if (event.progress !== undefined && queue.at(-1)?.progress !== undefined) queue.pop();
    queue.push(event);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  try {
    let task = await get(id);
    yield { kind: 'task', task };
    while (!isTerminal(task.state) && !signal.aborted) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      const event = queue.shift()!;
      if (event.progress !== undefined) {
        yield { kind: 'progress', attempt: event.attempt, ...event.progress, time: Date.now() };
        continue;
      }
      while (queue.length > 0 && queue[0]!.progress === undefined) queue.shift();
      task = await get(id);
      yield { kind: 'task', task };
    }
  } finally {
    stop();
    signal.removeEventListener('abort', onAbort);
  }
}
