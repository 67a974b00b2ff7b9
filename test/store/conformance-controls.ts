import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, TaskwireError } from '../../src/errors.js';
import type { Deletion, Store } from '../../src/store/index.js';
import { FLAG_BATCH } from '../../src/store/decisions.js';
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

export interface ControlStore {
  readonly store: Store;
  /**
   * How many tasks the claim's ready index holds (tasks_ready): a paused
   * queue's tasks must not be among them, or every claim walks past them.
   */
  readyRows(): Promise<number>;
}

/** Queue pauses, deletion and purges: what every store must do (beside conformance.ts). */
export function describeQueueControlConformance(name: string, open: () => Promise<ControlStore>) {
  describe(`${name} store queue controls`, () => {
    let store: Store;
    let readyRows: ControlStore['readyRows'];
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
      ({ store, readyRows } = await open());
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
      expect(await readyRows()).toBe(0);
    });

    it('keeps a paused backlog out of the ready index and its type’s claims; after the resume it is claimed in order', async () => {
      // More than FLAG_BATCH, so the pause flags it over several commits; many due at the same time, some earlier.
      const now = Date.now();
      const backlog = Array.from({ length: 2 * FLAG_BATCH + 7 }, (_, i) =>
        newTask({ runAt: i % 4 === 0 ? now - 1_000 - (i % 7) : 0, options: { queue: 'held', priority: i % 3 } }),
      );
      for (let i = 0; i < backlog.length; i += 400) await store.insert(backlog.slice(i, i + 400));
      expect(await readyRows()).toBe(backlog.length);
      expect(await store.pauseQueue('held', Date.now())).toBe(true);
      expect(await readyRows()).toBe(0);

      const free = [newTask({ options: { queue: 'free' } }), newTask({ options: { queue: 'free' } })];
      await store.insert(free);
      expect(await readyRows()).toBe(2);
      expect((await claim(5)).map((lease) => lease.id).sort()).toEqual(free.map((task) => task.id).sort());
      expect(await claim(5)).toEqual([]);

      expect(await store.resumeQueue('held')).toBe(true);
      expect(await readyRows()).toBe(backlog.length);
      // The claim's order: priority first, then submission (each claim's leases come in no order of their own).
      const expected = backlog
        .map((task, i) => ({ id: task.id, priority: task.options.priority, i }))
        .sort((a, b) => b.priority - a.priority || a.i - b.i)
        .map((task) => task.id);
      let taken = 0;
      for (let leases = await claim(300); leases.length > 0; leases = await claim(300)) {
        expect(leases.map((lease) => lease.id).sort()).toEqual(expected.slice(taken, taken + leases.length).sort());
        taken += leases.length;
      }
      expect(taken).toBe(expected.length);
    });

    it('flags every task that becomes QUEUED in a paused queue: inserted, released, revived, come due', async () => {
      const now = Date.now();
      const released = newTask({ options: { queue: 'held' } });
      const revived = newTask({ options: { queue: 'held', maxAttempts: 1 } });
      const due = newTask({ runAt: now + 60_000, options: { queue: 'held' } });
      await store.insert([released, revived, due]);
      const leases = await claim(2);
      expect(leases.map((lease) => lease.id)).toEqual([released.id, revived.id]);
      await store.fail([{ id: revived.id, attempt: 1, message: 'x', code: 2, retryable: false }], now);

      await store.pauseQueue('held', Date.now());
      const inserted = newTask({ options: { queue: 'held' } });
      await store.insert([inserted]);
      await store.release([{ id: released.id, attempt: 1 }], Date.now());
      await store.revive(revived.id, Date.now());
      expect(await store.promoteDue(now + 120_000)).toBe(1);
      for (const task of [inserted, released, revived, due]) expect((await store.get(task.id))?.state).toBe(S.TASK_STATE_QUEUED);
      expect(await readyRows()).toBe(0);

      const free = newTask({ options: { queue: 'free' } });
      await store.insert([free]);
      expect((await claim()).map((lease) => lease.id)).toEqual([free.id]);

      await store.resumeQueue('held');
      expect(await readyRows()).toBe(4);
      expect((await claim()).map((lease) => lease.id).sort()).toEqual([inserted.id, released.id, revived.id, due.id].sort());
      // Entering QUEUED in a running queue leaves the flag off.
      await store.release([{ id: inserted.id, attempt: 1 }], Date.now());
      expect(await readyRows()).toBe(1);
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
