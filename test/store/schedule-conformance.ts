import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { Code, TaskwireError } from '../../src/errors.js';
import type { NewSchedule, Store } from '../../src/store/index.js';
import { newTask } from './conformance.js';

const input = { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: Buffer.from('in') };

async function codeOf(promise: Promise<unknown>): Promise<number | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error instanceof TaskwireError ? error.code : -1),
  );
}

/** What every store must do with schedules: plain storage, and a firing fenced by version. */
export function describeScheduleConformance(name: string, open: () => Promise<Store>) {
  describe(`${name} store: schedules`, () => {
    let store: Store;
    const schedule = (overrides: Partial<NewSchedule> = {}): NewSchedule => ({
      id: 'nightly',
      spec: '{"any":"json"}',
      input,
      paused: false,
      nextFireAt: 1_000,
      ...overrides,
    });

    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('creates, reads, lists in id order, updates and deletes; ids are unique', async () => {
      const created = await store.createSchedule(schedule(), 500);
      expect(created).toMatchObject({ id: 'nightly', spec: '{"any":"json"}', paused: false, nextFireAt: 1_000, fired: 0, version: 1, createdAt: 500 });
      expect(Buffer.from(created.input.value).toString()).toBe('in');
      expect(await codeOf(store.createSchedule(schedule(), 600))).toBe(Code.ALREADY_EXISTS);
      await store.createSchedule(schedule({ id: 'a-first', paused: true, nextFireAt: undefined }), 600);
      await store.createSchedule(schedule({ id: 'z-last', nextFireAt: 3_000 }), 600);

      const first = await store.listSchedules(2, undefined);
      expect(first.schedules.map((s) => s.id)).toEqual(['a-first', 'nightly']);
      const second = await store.listSchedules(2, first.next);
      expect(second.schedules.map((s) => s.id)).toEqual(['z-last']);
      expect(second.next).toBeUndefined();

      const paused = await store.updateSchedule('nightly', { paused: true, nextFireAt: null }, 700);
      expect(paused).toMatchObject({ paused: true, version: 2, updatedAt: 700 });
      expect(paused.nextFireAt).toBeUndefined();
      const changed = await store.updateSchedule('nightly', { spec: '{"b":1}', paused: false, nextFireAt: 2_000 }, 800);
      expect(changed).toMatchObject({ spec: '{"b":1}', paused: false, nextFireAt: 2_000, version: 3 });

      expect(await codeOf(store.updateSchedule('nope', { paused: true }, 900))).toBe(Code.NOT_FOUND);
      await store.deleteSchedule('nightly');
      expect(await store.getSchedule('nightly')).toBeUndefined();
      expect(await codeOf(store.deleteSchedule('nightly'))).toBe(Code.NOT_FOUND);
    });

    it('finds due schedules, earliest first, and the next due time of those not paused', async () => {
      expect(await store.nextScheduleDue()).toBeUndefined();
      await store.createSchedule(schedule({ id: 'later', nextFireAt: 5_000 }), 0);
      await store.createSchedule(schedule({ id: 'sooner', nextFireAt: 2_000 }), 0);
      await store.createSchedule(schedule({ id: 'off', paused: true, nextFireAt: undefined }), 0);
      expect(await store.nextScheduleDue()).toBe(2_000);
      expect((await store.dueSchedules(1_999, 10)).map((s) => s.id)).toEqual([]);
      expect((await store.dueSchedules(9_000, 10)).map((s) => s.id)).toEqual(['sooner', 'later']);
      expect((await store.dueSchedules(9_000, 1)).map((s) => s.id)).toEqual(['sooner']);
    });

    it('fires once per version: the task and the advance in one write, a stale firing changes nothing', async () => {
      const created = await store.createSchedule(schedule(), 0);
      const events: TaskState[] = [];
      store.subscribe((batch) => events.push(...batch.map((e) => e.state)));
      const task = newTask({ options: { idempotencyKey: 'taskwire-schedule/nightly/1000' } });
      const firing = {
        id: 'nightly',
        version: created.version,
        nextFireAt: 2_000,
        tasks: [task],
        lastFireAt: 1_000,
        missedSkipped: 3,
        overlapSkipped: 1,
        lastMissed: { text: '3 missed', at: 1_500 },
      };
      const [first, again] = await Promise.all([store.fireSchedule(firing, 1_500), store.fireSchedule(firing, 1_500)]);
      expect(first.applied).toBe(true);
      expect(again.applied).toBe(false);
      if (!first.applied) return;
      expect(first.tasks.map((t) => t.task.id)).toEqual([task.id]);
      expect(first.schedule).toMatchObject({
        nextFireAt: 2_000,
        lastFireAt: 1_000,
        lastTaskId: task.id,
        fired: 1,
        missedSkipped: 3,
        overlapSkipped: 1,
        lastMissed: '3 missed',
        lastMissedAt: 1_500,
        version: created.version + 1,
      });
      expect((await store.get(task.id))?.state).toBe(TaskState.TASK_STATE_QUEUED);
      expect(events).toEqual([TaskState.TASK_STATE_QUEUED]);

      // The same due time fired again under a new version (an update raced it) finds its task by key.
      const next = await store.fireSchedule({ ...firing, version: created.version + 1, tasks: [newTask({ options: { idempotencyKey: 'taskwire-schedule/nightly/1000' } })] }, 1_600);
      expect(next.applied).toBe(true);
      if (next.applied) expect(next.tasks[0]).toMatchObject({ existing: true, task: { id: task.id } });

      // A firing with no task (overlap skipped) keeps the last task.
      const skipped = await store.fireSchedule({ id: 'nightly', version: created.version + 2, nextFireAt: 3_000, tasks: [], missedSkipped: 0, overlapSkipped: 1 }, 2_000);
      expect(skipped.applied && skipped.schedule).toMatchObject({ lastTaskId: task.id, overlapSkipped: 3, nextFireAt: 3_000 });

      // A paused schedule does not fire.
      const paused = await store.updateSchedule('nightly', { paused: true, nextFireAt: null }, 2_100);
      expect((await store.fireSchedule({ ...firing, version: paused.version, tasks: [] }, 2_200)).applied).toBe(false);
    });

    it('tells listeners after a schedule changed', async () => {
      let changes = 0;
      store.onSchedulesChanged(() => changes++);
      await store.createSchedule(schedule(), 0);
      await store.updateSchedule('nightly', { paused: true, nextFireAt: null }, 1);
      await store.deleteSchedule('nightly');
      expect(changes).toBe(3);
    });
  });
}
