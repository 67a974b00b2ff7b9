import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, TaskwireError } from '../../src/errors.js';
import type { Deletion, Store } from '../../src/store/index.js';
import { ECHO, newTask } from './conformance.js';

const S = TaskState;
const output = { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.from('out') };

async function codeOf(promise: Promise<unknown>): Promise<{ code: Code; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskwireError);
  return error as TaskwireError;
}

/** Queue pauses, deletion and purges: what every store must do (beside conformance.ts). */
export function describeQueueControlConformance(name: string, open: () => Promise<Store>) {
  describe(`${name} store queue controls`, () => {
    let store: Store;
    let deleted: Deletion[];
    let pauses: Array<[string, boolean]>;
    const claim = (limit = 10) =>
      store.claim({ types: [ECHO], limit, owner: 'session-1', workerId: 'worker-1', leaseMs: 10_000, now: Date.now() });
    /** Inserts and runs a task to SUCCEEDED. */
    async function succeeded(queue = 'default', idempotencyKey?: string) {
      const task = newTask({ options: { queue, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) } });
      await store.insert([task]);
      const [lease] = await claim(1);
      expect(lease!.id).toBe(task.id);
      await store.complete([{ id: task.id, attempt: lease!.attempt, output }], Date.now());
      return task;
    }

    beforeEach(async () => {
      store = await open();
      deleted = [];
      pauses = [];
      store.onDeleted((batch) => deleted.push(...batch));
      store.onQueuePause((queue, paused) => pauses.push([queue, paused]));
    });
    afterEach(async () => {
      await store.close();
    });

    it('pauses a queue: claims skip its tasks until it is resumed; idempotent both ways', async () => {
      const held = newTask({ options: { queue: 'held', priority: 10 } });
      const free = newTask({ options: { queue: 'free' } });
      expect(await store.pauseQueue('held', Date.now())).toBe(true);
      expect(await store.pauseQueue('held', Date.now())).toBe(false);
      expect(await store.pausedQueues()).toEqual(['held']);
      await store.insert([held, free]);
      expect((await claim()).map((lease) => lease.id)).toEqual([free.id]);
      expect(await claim()).toEqual([]);
      expect((await store.get(held.id))?.state).toBe(S.TASK_STATE_QUEUED);

      expect(await store.resumeQueue('held')).toBe(true);
      expect(await store.resumeQueue('held')).toBe(false);
      expect(await store.pausedQueues()).toEqual([]);
      expect((await claim()).map((lease) => lease.id)).toEqual([held.id]);
      expect(pauses).toEqual([
        ['held', true],
        ['held', false],
      ]);
    });

    it('lets a paused queue’s retries and released attempts wait', async () => {
      const task = newTask({ options: { queue: 'q', backoff: { initialMs: 1, maxMs: 1, multiplier: 1, jitter: 0 } } });
      await store.insert([task]);
      const [lease] = await claim();
      await store.pauseQueue('q', Date.now());
      await store.fail([{ id: task.id, attempt: lease!.attempt, message: 'x', code: 2, retryable: true }], Date.now());
      await store.promoteDue(Date.now() + 10);
      expect((await store.get(task.id))?.state).toBe(S.TASK_STATE_QUEUED);
      expect(await claim()).toEqual([]);
    });

    it('deletes a finished task with a Deletion, refuses a live or unknown one, and frees its idempotency key', async () => {
      const task = await succeeded('default', 'key-1');
      const removed = await store.delete(task.id);
      expect(removed).toMatchObject({ id: task.id, state: S.TASK_STATE_SUCCEEDED });
      expect(await store.get(task.id)).toBeUndefined();
      expect(deleted).toEqual([{ queue: 'default', state: S.TASK_STATE_SUCCEEDED, count: 1, cause: 'request' }]);
      expect((await store.stats('default'))[0]?.counts[S.TASK_STATE_SUCCEEDED] ?? 0).toBe(0);

      const again = newTask({ options: { idempotencyKey: 'key-1' } });
      const [result] = await store.insert([again]);
      expect(result).toMatchObject({ existing: false, task: { id: again.id } });

      const error = await codeOf(store.delete(again.id));
      expect(error.code).toBe(Code.FAILED_PRECONDITION);
      expect(error.message).toContain('QUEUED');
      expect((await store.get(again.id))?.state).toBe(S.TASK_STATE_QUEUED);
      expect((await codeOf(store.delete(task.id))).code).toBe(Code.NOT_FOUND);
    });

    it('purges a queue’s finished tasks by state and finish time, in batches of the limit', async () => {
      const done = [await succeeded('p'), await succeeded('p'), await succeeded('p')];
      const other = await succeeded('other');
      const cancelled = newTask({ options: { queue: 'p' } });
      const waiting = newTask({ options: { queue: 'p' } });
      await store.insert([cancelled]);
      await store.cancel(cancelled.id, 'x', Date.now());
      await store.insert([waiting]);
      deleted.length = 0;

      const finished = (await store.get(done[0]!.id))!.finishedAt!;
      expect(await store.purge({ queue: 'p', states: [S.TASK_STATE_SUCCEEDED], finishedBefore: finished - 60_000, limit: 10 })).toBe(0);
      expect(await store.purge({ queue: 'p', states: [S.TASK_STATE_SUCCEEDED], limit: 2 })).toBe(2);
      expect(await store.purge({ queue: 'p', states: [S.TASK_STATE_SUCCEEDED], limit: 2 })).toBe(1);
      expect(deleted).toEqual([
        { queue: 'p', state: S.TASK_STATE_SUCCEEDED, count: 2, cause: 'request' },
        { queue: 'p', state: S.TASK_STATE_SUCCEEDED, count: 1, cause: 'request' },
      ]);
      expect(await store.purge({ queue: 'p', states: [S.TASK_STATE_SUCCEEDED, S.TASK_STATE_FAILED, S.TASK_STATE_CANCELLED], limit: 10 })).toBe(1);
      expect(await store.get(cancelled.id)).toBeUndefined();
      expect((await store.get(waiting.id))?.state).toBe(S.TASK_STATE_QUEUED);
      expect((await store.get(other.id))?.state).toBe(S.TASK_STATE_SUCCEEDED);
      await expect(store.purge({ queue: 'p', states: [S.TASK_STATE_QUEUED], limit: 1 })).rejects.toThrow('purge states');
    });
  });
}
