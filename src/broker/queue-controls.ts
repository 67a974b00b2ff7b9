import type { Logger } from 'pino';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { invalidArgument } from '../errors.js';
import { stateName, transitions, type Store, type TaskRecord } from '../store/index.js';
import type { Dispatcher } from './dispatcher.js';
import type { QueueStats } from './queue-stats.js';
import { checkQueueName } from './validate.js';

/** Tasks deleted per commit by a purge: each batch holds the store (SQLite's writer) only briefly. */
export const PURGE_BATCH = 500;

export interface PurgeOptions {
  readonly queue: string;
  /** End states to delete; empty means every end state. */
  readonly states: readonly TaskState[];
  /** Only tasks that finished before this time (epoch ms). */
  readonly finishedBefore?: number;
  /** Stops between batches (the caller went away); what was deleted stays deleted. */
  readonly signal?: AbortSignal;
}

export interface QueueControls {
  /** Whether this server knows the queue to be paused (the store's claims are what enforce it). */
  isPaused(queue: string): boolean;
  /** Whether a new task of the queue may skip the claim: not before the paused queues are known, never for a paused one. */
  mayDispatchDirectly(queue: string): boolean;
  /** Resolves once the paused queues have been read from the store. */
  readonly ready: Promise<void>;
  pause(queue: string): Promise<boolean>;
  resume(queue: string): Promise<boolean>;
  delete(id: string): Promise<TaskRecord>;
  /** Deletes in batches of PURGE_BATCH, one commit each; returns how many were deleted. */
  purge(options: PurgeOptions): Promise<number>;
  close(): void;
}

const END_STATES = transitions.delete.from as readonly TaskState[];

/**
 * Pause, resume, delete and purge. A pause is the store's (a row every
 * replica's claims check); this server keeps the set in memory too, from the
 * store at start and every pause or resume since (other replicas' through
 * the store's notifications), to keep paused tasks out of direct dispatch,
 * to show the flag in statistics, and to wake the dispatcher on a resume.
 */
export function createQueueControls(options: {
  readonly store: Store;
  readonly queues: QueueStats;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
}): QueueControls {
  const { store, queues, dispatcher } = options;
  const paused = new Set<string>();
  const changed = (queue: string, isPaused: boolean) => {
    if (isPaused) paused.add(queue);
    else paused.delete(queue);
    queues.setPaused(queue, isPaused);
    // Its tasks were skipped by claims: look in the store again, now.
    if (!isPaused) dispatcher.recheck();
  };
  const stop = store.onQueuePause(changed);
  let loaded = false;
  // A change that arrives while this reads may be applied again after it; the read then says the same or older.
  const ready = store.pausedQueues().then(
    (names) => {
      names.forEach((queue) => changed(queue, true));
      loaded = true;
    },
    (error: unknown) => options.logger.error({ err: error }, 'could not read the paused queues; new tasks go through claims only'),
  );

  function requireQueue(queue: string): void {
    if (queue === '') throw invalidArgument('queue is required: the name of the queue');
    checkQueueName(queue, 'queue');
  }

  return {
    isPaused: (queue) => paused.has(queue),
    mayDispatchDirectly: (queue) => loaded && !paused.has(queue),
    ready,

    async pause(queue) {
      requireQueue(queue);
      return store.pauseQueue(queue, Date.now());
    },

    async resume(queue) {
      requireQueue(queue);
      return store.resumeQueue(queue);
    },

    async delete(id) {
      if (id === '') throw invalidArgument('id is required: the task id returned by SubmitTask');
      return store.delete(id);
    },

    async purge({ queue, states, finishedBefore, signal }) {
      requireQueue(queue);
      states.forEach((state, i) => {
        if (!END_STATES.includes(state)) {
          const name = TaskState[state] === undefined ? String(state) : stateName(state);
          throw invalidArgument(`states[${i}] is ${name}: only SUCCEEDED, FAILED or CANCELLED tasks can be purged`);
        }
      });
      if (finishedBefore !== undefined && !Number.isFinite(finishedBefore)) {
        throw invalidArgument('finished_before is not a valid time');
      }
      const request = {
        queue,
        states: states.length === 0 ? END_STATES : states,
        ...(finishedBefore === undefined ? {} : { finishedBefore }),
        limit: PURGE_BATCH,
      };
      let deleted = 0;
      for (;;) {
        const n = await store.purge(request);
        deleted += n;
        if (n < PURGE_BATCH || signal?.aborted) return deleted;
      }
    },

    close: stop,
  };
}
