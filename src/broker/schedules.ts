import { invalidArgument, notFound } from '../errors.js';
import type { ScheduleRecord, Store } from '../store/index.js';
import { checkSchedule, checkScheduleId, nextDue, type ScheduleInput, type ScheduleSpecRecord } from './schedule-spec.js';
import type { TaskTypeInfo } from './types.js';

/** A stored schedule with its spec read back. */
export interface ScheduleView {
  readonly record: ScheduleRecord;
  readonly spec: ScheduleSpecRecord;
}

export interface SchedulePageView {
  readonly schedules: readonly ScheduleView[];
  readonly next?: string;
}

/** Create, change and read schedules (admin calls); the Scheduler fires them. */
export interface Schedules {
  create(id: string, input: ScheduleInput, paused: boolean): Promise<ScheduleView>;
  update(id: string, input: ScheduleInput): Promise<ScheduleView>;
  pause(id: string): Promise<ScheduleView>;
  resume(id: string): Promise<ScheduleView>;
  delete(id: string): Promise<void>;
  get(id: string): Promise<ScheduleView>;
  list(pageSize: number, after: string | undefined): Promise<SchedulePageView>;
}

const view = (record: ScheduleRecord): ScheduleView => ({ record, spec: JSON.parse(record.spec) as ScheduleSpecRecord });

function requireId(id: string): void {
  if (id === '') throw invalidArgument('id is required: the schedule id given at CreateSchedule');
}

export function createSchedules(store: Store, types: ReadonlyMap<string, TaskTypeInfo>): Schedules {
  return {
    async create(id, input, paused) {
      checkScheduleId(id);
      const now = Date.now();
      const checked = checkSchedule(input, types, now);
      const next = nextDue(checked.spec, now);
      return view(
        await store.createSchedule(
          { id, spec: JSON.stringify(checked.spec), input: checked.input, paused, ...(paused || next === undefined ? {} : { nextFireAt: next }) },
          now,
        ),
      );
    },

    async update(id, input) {
      requireId(id);
      const now = Date.now();
      const checked = checkSchedule(input, types, now);
      const before = await store.getSchedule(id);
      if (before === undefined) throw notFound(`no schedule with id "${id}"`);
      const next = nextDue(checked.spec, now);
      return view(
        await store.updateSchedule(
          id,
          { spec: JSON.stringify(checked.spec), input: checked.input, ...(before.paused ? {} : { nextFireAt: next ?? null }) },
          now,
        ),
      );
    },

    async pause(id) {
      requireId(id);
      return view(await store.updateSchedule(id, { paused: true, nextFireAt: null }, Date.now()));
    },

    async resume(id) {
      requireId(id);
      const before = await store.getSchedule(id);
      if (before === undefined) throw notFound(`no schedule with id "${id}"`);
      const now = Date.now();
      return view(await store.updateSchedule(id, { paused: false, nextFireAt: nextDue(view(before).spec, now) ?? null }, now));
    },

    async delete(id) {
      requireId(id);
      await store.deleteSchedule(id);
    },

    async get(id) {
      requireId(id);
      const record = await store.getSchedule(id);
      if (record === undefined) throw notFound(`no schedule with id "${id}"`);
      return view(record);
    },

    async list(pageSize, after) {
      const page = await store.listSchedules(pageSize, after);
      return { schedules: page.schedules.map(view), ...(page.next === undefined ? {} : { next: page.next }) };
    },
  };
}
