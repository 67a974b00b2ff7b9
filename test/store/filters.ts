import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, TaskwireError } from '../../src/errors.js';
import type { ListFilter, Store, TaskRecord } from '../../src/store/index.js';
import { waitFor } from '../helpers/wait.js';
import { ECHO, newTask } from './conformance.js';

const S = TaskState;
const SLEEP = '/demo.v1.DemoService/Sleep';

/** A store under test and a way to delete its rows as an operator's delete or the retention cleaner would. */
export interface FilterStore {
  readonly store: Store;
  remove(ids: readonly string[]): Promise<void>;
}

/** Every page of a listing, following next. */
async function listAll(store: Store, filter: ListFilter, pageSize = 100): Promise<TaskRecord[]> {
  const tasks: TaskRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list(filter, pageSize, cursor);
    tasks.push(...page.tasks);
    cursor = page.next;
  } while (cursor !== undefined);
  return tasks;
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

/**
 * Filters, orders, keyset pages and the bulk actions' selection: the same
 * SQL rule (src/store/filter.ts) on every store.
 */
export function describeFilterConformance(name: string, open: () => Promise<FilterStore>) {
  describe(`${name} store filters`, () => {
    let store: Store;
    let remove: FilterStore['remove'];
    beforeEach(async () => {
      ({ store, remove } = await open());
    });
    afterEach(async () => {
      await store.close();
    });
    const ids = (tasks: readonly { id: string }[]) => tasks.map((t) => t.id);
    const claim = (types = [ECHO, SLEEP]) => store.claim({ types, limit: 1, owner: 's', workerId: 'w', leaseMs: 10_000, now: Date.now() });

    it('filter by queue, type, states, creation and finish times, labels and the last error code', async () => {
      const a = newTask({ options: { queue: 'q1', labels: { team: 'red', 'odd"key.$[0]': 'v' } } });
      await store.insert([a]);
      const aCreated = (await store.get(a.id))!.createdAt;
      await waitFor(() => Date.now() > aCreated, { what: 'the clock to pass the first insert' });
      const b = newTask({ type: SLEEP, options: { queue: 'q2', labels: { team: 'blue' }, maxAttempts: 5 } });
      const c = newTask({ options: { queue: 'q2', labels: { team: 'red', tier: 'gold' } } });
      await store.insert([b, c]);
      const bCreated = (await store.get(b.id))!.createdAt;

      // a: CANCELLED, finished at 1000; b: FAILED twice, last error code 3 after a 14; c: QUEUED.
      await store.cancel(a.id, 'x', 1_000);
      for (const code of [Code.UNAVAILABLE, Code.INVALID_ARGUMENT]) {
        const [lease] = await claim([SLEEP]);
        await store.fail([{ id: b.id, attempt: lease!.attempt, message: 'e', code, retryable: code === Code.UNAVAILABLE }], 2_000);
        if (code === Code.UNAVAILABLE) await store.promoteDue(Date.now() + 3_600_000);
      }
      expect((await store.get(b.id))!.state).toBe(S.TASK_STATE_FAILED);

      const only = async (filter: ListFilter) => ids(await listAll(store, filter)).sort();
      const sorted = (...tasks: { id: string }[]) => ids(tasks).sort();
      expect(await only({ queue: 'q2' })).toEqual(sorted(b, c));
      expect(await only({ type: SLEEP })).toEqual(sorted(b));
      expect(await only({ states: [S.TASK_STATE_CANCELLED, S.TASK_STATE_QUEUED] })).toEqual(sorted(a, c));
      expect(await only({ state: S.TASK_STATE_FAILED })).toEqual(sorted(b));
      expect(await only({ createdSince: bCreated })).toEqual(sorted(b, c));
      expect(await only({ createdBefore: bCreated })).toEqual(sorted(a));
      expect(await only({ finishedSince: 1_500 })).toEqual(sorted(b));
      expect(await only({ finishedBefore: 1_500 })).toEqual(sorted(a));
      expect(await only({ finishedSince: 0 })).toEqual(sorted(a, b));
      expect(await only({ labels: { team: 'red' } })).toEqual(sorted(a, c));
      expect(await only({ labels: { team: 'red', tier: 'gold' } })).toEqual(sorted(c));
      expect(await only({ labels: { 'odd"key.$[0]': 'v' } })).toEqual(sorted(a));
      expect(await only({ labels: { team: "red' OR 1=1 --" } })).toEqual([]);
      expect(await only({ errorCode: Code.INVALID_ARGUMENT })).toEqual(sorted(b));
      expect(await only({ errorCode: Code.UNAVAILABLE })).toEqual([]); // an earlier attempt's error does not count
      expect(await only({ queue: 'q2', labels: { team: 'red' }, states: [S.TASK_STATE_QUEUED] })).toEqual(sorted(c));

      // The bulk actions' selection reads the same filter, oldest first.
      expect(ids(await store.matching({ labels: { team: 'red' } }, 10))).toEqual(ids([a, c]));
    });

    it('lists newest or oldest first; a page token keeps its order', async () => {
      const tasks = Array.from({ length: 7 }, () => newTask());
      for (const task of tasks) await store.insert([task]);
      expect(ids(await listAll(store, {}, 3))).toEqual(ids([...tasks].reverse()));
      expect(ids(await listAll(store, { order: 'oldest' }, 3))).toEqual(ids(tasks));
      const first = await store.list({ order: 'oldest' }, 3, undefined);
      const error = await store.list({}, 3, first.next).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskwireError);
      expect((error as TaskwireError).code).toBe(Code.INVALID_ARGUMENT);
      expect((error as TaskwireError).message).toContain('oldest first');

      const all = await store.matching({}, 100);
      expect(ids(all)).toEqual(ids(tasks));
      expect(ids(await store.matching({}, 2, all[2]!.seq))).toEqual(ids(tasks.slice(3, 5)));
    });

    it('pages stay stable while tasks are inserted and deleted, including the newest (whose seq SQLite may reuse)', async () => {
      const next = random(name.length * 7919);
      for (const order of ['newest', 'oldest'] as const) {
        const live = new Map<string, number>(); // id → insertion index
        let inserted = 0;
        const insert = async (n: number) => {
          const batch = Array.from({ length: n }, () => newTask());
          await store.insert(batch);
          for (const task of batch) live.set(task.id, inserted++);
        };
        await insert(60);
        const before = new Set(live.keys());
        const deleted = new Set<string>();
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.list({ order }, 7, cursor);
          seen.push(...ids(page.tasks));
          cursor = page.next;
          // Between pages: delete a few, always including the newest row and the page's last row at times, and insert.
          const alive = [...live.keys()];
          const victims = new Set<string>([alive[alive.length - 1]!]);
          if (next() < 0.5 && page.tasks.length > 0) victims.add(page.tasks[page.tasks.length - 1]!.id);
          for (let i = 0; i < 3; i++) victims.add(alive[Math.floor(next() * alive.length)]!);
          await remove([...victims]);
          for (const id of victims) {
            live.delete(id);
            deleted.add(id);
          }
          await insert(1 + Math.floor(next() * 3));
        } while (cursor !== undefined);

        expect(new Set(seen).size).toBe(seen.length); // nothing twice
        const survivors = [...before].filter((id) => !deleted.has(id));
        for (const id of survivors) expect(seen).toContain(id); // everything that lived throughout, once
        const order_ = seen.filter((id) => before.has(id)).map((id) => [...before].indexOf(id));
        expect(order_).toEqual([...order_].sort((x, y) => (order === 'newest' ? y - x : x - y)));
        await remove([...live.keys()]);
      }
    });
  });
}
