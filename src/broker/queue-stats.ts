import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { Deletion, QueueCounts, Store, TaskEvent } from '../store/index.js';

/** Rates are averaged over this window, in one-second buckets. */
const RATE_WINDOW_S = 60;

/** One queue's counts as the broker keeps them, with its oldest waiting task and recent rates. */
export interface QueueStatsRecord extends QueueCounts {
  /** Paused (PauseQueue): listed even when it holds no tasks. */
  readonly paused: boolean;
  /** How long the oldest QUEUED task has waited since it became due; 0 with none. */
  readonly oldestQueuedMs: number;
  /** Tasks per second over the last minute, every replica's. */
  readonly rates: { readonly submitted: number; readonly succeeded: number; readonly failed: number };
}

type RateKind = 'submitted' | 'succeeded' | 'failed';

interface QueueState {
  readonly counts: Partial<Record<TaskState, number>>;
  /** Per kind, RATE_WINDOW_S one-second buckets indexed by second % RATE_WINDOW_S, and each bucket's second. */
  readonly buckets: Record<RateKind, number[]>;
  readonly seconds: number[];
}

/**
 * Tasks by state per queue, kept in memory: the store's count once at start,
 * then every committed event (every replica's, on a networked store). Reads
 * cost nothing however many tasks were ever stored; on PostgreSQL every
 * replica holds the same answer.
 */
export class QueueStats {
  private readonly queues = new Map<string, QueueState>();
  private readonly paused = new Set<string>();
  /** Resolves once the starting count is in. */
  readonly ready: Promise<void>;

  constructor(private readonly store: Store) {
    this.ready = store.stats(undefined).then(
      (rows) => {
        for (const row of rows) {
          const queue = this.queue(row.queue);
          for (const [state, n] of Object.entries(row.counts)) add(queue.counts, Number(state) as TaskState, n ?? 0);
        }
      },
      () => undefined,
    );
  }

  /** Applies committed events (progress reports change nothing). */
  apply(events: readonly TaskEvent[], now = Date.now()): void {
    for (const event of events) {
      if (event.progress !== undefined) continue;
      const queue = this.queue(event.queue);
      if (event.previous !== TaskState.TASK_STATE_UNSPECIFIED) add(queue.counts, event.previous, -1);
      add(queue.counts, event.state, 1);
      if (event.previous === TaskState.TASK_STATE_UNSPECIFIED) this.tick(queue, 'submitted', now);
      else if (event.state === TaskState.TASK_STATE_SUCCEEDED) this.tick(queue, 'succeeded', now);
      else if (event.state === TaskState.TASK_STATE_FAILED) this.tick(queue, 'failed', now);
    }
  }

  /** A queue paused or resumed: a paused queue is listed even with no tasks. */
  setPaused(queue: string, paused: boolean): void {
    if (paused) {
      this.paused.add(queue);
      this.queue(queue);
    } else {
      this.paused.delete(queue);
    }
  }

  /** Applies committed deletions: the tasks are gone from their state's count. */
  delete(deletions: readonly Deletion[]): void {
    for (const deletion of deletions) add(this.queue(deletion.queue).counts, deletion.state, -deletion.count);
  }

  /** Counts per queue (one queue, or all), sorted by name. */
  counts(queue?: string): QueueCounts[] {
    const names = queue === undefined ? [...this.queues.keys()].sort() : this.queues.has(queue) ? [queue] : [];
    return names.map((name) => ({ queue: name, counts: { ...this.queues.get(name)!.counts } }));
  }

  /** Counts, oldest waiting age (one light read of QUEUED tasks) and rates. */
  async stats(queue: string | undefined, now = Date.now()): Promise<QueueStatsRecord[]> {
    await this.ready;
    const oldest = new Map((await this.store.oldestQueued()).map((row) => [row.queue, row.dueAt]));
    return this.counts(queue).map((row) => {
      const state = this.queues.get(row.queue)!;
      const due = oldest.get(row.queue);
      return {
        ...row,
        paused: this.paused.has(row.queue),
        oldestQueuedMs: due === undefined ? 0 : Math.max(0, now - due),
        rates: { submitted: rate(state, 'submitted', now), succeeded: rate(state, 'succeeded', now), failed: rate(state, 'failed', now) },
      };
    });
  }

  private queue(name: string): QueueState {
    let state = this.queues.get(name);
    if (state === undefined) {
      const zeros = () => new Array<number>(RATE_WINDOW_S).fill(0);
      state = { counts: {}, buckets: { submitted: zeros(), succeeded: zeros(), failed: zeros() }, seconds: zeros() };
      this.queues.set(name, state);
    }
    return state;
  }

  private tick(state: QueueState, kind: RateKind, now: number): void {
    const second = Math.floor(now / 1000);
    const slot = second % RATE_WINDOW_S;
    if (state.seconds[slot] !== second) {
      state.seconds[slot] = second;
      state.buckets.submitted[slot] = 0;
      state.buckets.succeeded[slot] = 0;
      state.buckets.failed[slot] = 0;
    }
    state.buckets[kind][slot]! += 1;
  }
}

function add(counts: Partial<Record<TaskState, number>>, state: TaskState, n: number): void {
  counts[state] = (counts[state] ?? 0) + n;
}

function rate(state: QueueState, kind: RateKind, now: number): number {
  const second = Math.floor(now / 1000);
  let sum = 0;
  for (let slot = 0; slot < RATE_WINDOW_S; slot++) {
    if (second - state.seconds[slot]! < RATE_WINDOW_S) sum += state.buckets[kind][slot]!;
  }
  return sum / RATE_WINDOW_S;
}
