import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { Store, TaskEvent } from '../../src/store/index.js';
import { ECHO, newTask } from './conformance.js';

const output = { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.from('out') };

/** Concurrency keys, enforced by the claim itself: the same in every store. */
export function describeKeyConformance(name: string, open: () => Promise<Store>) {
  describe(`${name} store: concurrency keys`, () => {
    let store: Store;
    let events: TaskEvent[];
    const claim = async (limit = 10) =>
      (await store.claim({ types: [ECHO], limit, owner: 's', workerId: 'w', leaseMs: 10_000, now: Date.now() })).map((l) => l.id);
    const keyed = (id: string, key: string | undefined, extra: { priority?: number; concurrencyLimit?: number } = {}) =>
      newTask({ id, options: { ...(key === undefined ? {} : { concurrencyKey: key, concurrencyLimit: extra.concurrencyLimit ?? 1 }), priority: extra.priority ?? 0 } });

    beforeEach(async () => {
      store = await open();
      events = [];
      store.subscribe((batch) => events.push(...batch));
    });
    afterEach(async () => {
      await store.close();
    });

    it('run one task of a key at a time, in submission order, while other keys and unkeyed tasks flow', async () => {
      // a2 has the higher priority, but it was submitted after a1: within a key, submission order wins.
      await store.insert([keyed('a1', 'A'), keyed('a2', 'A', { priority: 10 }), keyed('a3', 'A'), keyed('b1', 'B'), keyed('n1', undefined)]);
      expect((await claim()).sort()).toEqual(['a1', 'b1', 'n1']);
      expect(await claim()).toEqual([]);
      expect((await store.get('a1'))?.options).toMatchObject({ concurrencyKey: 'A', concurrencyLimit: 1 });
      await store.complete([{ id: 'a1', attempt: 1, output }], Date.now());
      expect(events.at(-1)).toMatchObject({ id: 'a1', state: TaskState.TASK_STATE_SUCCEEDED, concurrencyKey: 'A' });
      expect(await claim()).toEqual(['a2']);
      await store.cancel('a2', 'test', Date.now());
      expect(events.at(-1)).toMatchObject({ id: 'a2', state: TaskState.TASK_STATE_CANCELLED, concurrencyKey: 'A' });
      expect(await claim()).toEqual(['a3']);
    });

    it('hold a key for a retry waiting out its backoff, so the order holds across failures', async () => {
      await store.insert([keyed('a1', 'A'), keyed('a2', 'A')]);
      expect(await claim()).toEqual(['a1']);
      const [failed] = await store.fail([{ id: 'a1', attempt: 1, message: 'boom', code: 14, retryable: true }], Date.now());
      expect(failed).toEqual({ applied: true, state: TaskState.TASK_STATE_SCHEDULED });
      expect(events.at(-1)).toMatchObject({ id: 'a1', concurrencyKey: 'A' });
      expect(await claim()).toEqual([]);
      // A released attempt goes back to QUEUED, ahead of a2 as before.
      await store.promoteDue(Date.now() + 10 * 60_000);
      expect(await claim()).toEqual(['a1']);
      await store.release([{ id: 'a1', attempt: 2 }], Date.now());
      expect(await claim()).toEqual(['a1']);
    });

    it('count, per queue and key, the tasks waiting and running, for keys with tasks waiting', async () => {
      await store.insert([keyed('a1', 'A'), keyed('a2', 'A'), keyed('a3', 'A'), keyed('b1', 'B'), keyed('n1', undefined)]);
      await claim();
      const byKey = (rows: Awaited<ReturnType<Store['waitingKeys']>>) => [...rows].sort((x, y) => x.key.localeCompare(y.key));
      // B's only task runs: nothing of B waits, so B is not listed.
      expect(byKey(await store.waitingKeys(undefined))).toEqual([{ queue: 'default', key: 'A', waiting: 2, running: 1 }]);
      expect(await store.waitingKeys('other')).toEqual([]);
      expect(byKey(await store.waitingKeys('default'))).toEqual([{ queue: 'default', key: 'A', waiting: 2, running: 1 }]);
    });

    it('let a delayed task join its key when it comes due, never beside a running one', async () => {
      await store.insert([{ ...keyed('late', 'A'), runAt: Date.now() + 60_000 }, keyed('a2', 'A')]);
      expect(await claim()).toEqual(['a2']);
      await store.promoteDue(Date.now() + 120_000);
      expect(await claim()).toEqual([]);
      await store.complete([{ id: 'a2', attempt: 1, output }], Date.now());
      expect(await claim()).toEqual(['late']);
    });

    it('let up to the limit of a key run at once', async () => {
      await store.insert(['c1', 'c2', 'c3', 'c4'].map((id) => keyed(id, 'C', { concurrencyLimit: 2 })));
      expect(await claim()).toEqual(['c1', 'c2']);
      await store.complete([{ id: 'c2', attempt: 1, output }], Date.now());
      expect(await claim()).toEqual(['c3']);
    });

    it('do not let a crowd of one key hide the tasks behind it', async () => {
      await store.insert([...Array.from({ length: 300 }, (_, i) => keyed(`k${i}`, 'HOT')), keyed('other', 'COLD'), keyed('plain', undefined)]);
      expect((await claim(3)).sort()).toEqual(['k0', 'other', 'plain']);
    });
  });
}
