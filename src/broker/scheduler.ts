import type { Logger } from 'pino';
import type { NewTask, Retention, ScheduleFiring, ScheduleRecord, Store } from '../store/index.js';
import { newTaskId } from './ids.js';
import { firingKey, nextDue, type ScheduleSpecRecord } from './schedule-spec.js';
import type { TaskTypeInfo } from './types.js';
import { resolveSubmit } from './validate.js';

/** Due times listed at most per firing; past this a long outage is counted, not enumerated. */
const MAX_LISTED = 10_000;
/** Schedules fired per pass. */
const BATCH = 100;
/** Looks at the store at least this often: clocks drift, and a NOTIFY can be missed. */
const MAX_SLEEP_MS = 30_000;
/** After a store error, try again this much later. */
const RETRY_MS = 1_000;

const iso = (ms: number) => new Date(ms).toISOString();

/** Which due times to fire, from the schedule's next due time up to `now`, by its missed policy. */
export function planDueTimes(spec: ScheduleSpecRecord, first: number, now: number) {
  const due: number[] = [];
  let more = false;
  for (let t: number | undefined = first; t !== undefined && t <= now; t = nextDue(spec, t)) {
    if (due.length === MAX_LISTED) {
      more = true;
      break;
    }
    due.push(t);
  }
  const missed = due.filter((t) => now - t > spec.missedGraceMs);
  const onTime = due.slice(missed.length);
  let chosen: number[] = [];
  let action = '';
  if (missed.length > 0) {
    if (spec.missedPolicy === 'skip') action = 'skipped';
    else if (spec.missedPolicy === 'once') {
      chosen = [missed.at(-1)!];
      action = 'ran once';
    } else {
      chosen = missed.slice(-spec.missedLimit);
      action = chosen.length === missed.length ? 'ran each' : `ran the last ${chosen.length}, skipped the rest`;
    }
  }
  const count = more ? `more than ${MAX_LISTED}` : String(missed.length);
  const lastMissed =
    missed.length === 0
      ? undefined
      : `${count} missed due time${missed.length === 1 ? '' : 's'} from ${iso(missed[0]!)} to ${iso(missed.at(-1)!)}: ${action}`;
  return { fire: [...chosen, ...onTime], missedSkipped: missed.length - chosen.length, lastMissed };
}

export interface SchedulerOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly types: ReadonlyMap<string, TaskTypeInfo>;
  /** How long a type's finished tasks are kept: the same resolution as a submit's. */
  readonly retentionOf: (info: TaskTypeInfo) => Retention;
  /** Inserted tasks were committed (the broker's own bookkeeping). */
  readonly fired?: (count: number) => void;
}

/**
 * Fires schedules as they come due: a timer to the earliest next due time,
 * woken early when schedules change (here, or on another replica through the
 * store). Each firing is the store's fenced write, so replicas racing for the
 * same due time fire it once.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = true;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: SchedulerOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.options.store.onSchedulesChanged(() => this.wake());
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
  }

  /** Look at the store now (schedules changed). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = true;
    void this.pass()
      .then((next) => this.arm(next === undefined ? MAX_SLEEP_MS : next - Date.now()))
      .catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'schedules could not be fired; trying again');
        this.arm(RETRY_MS);
      });
  }

  private arm(delay: number): void {
    this.running = false;
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      this.wake();
      return;
    }
    this.timer = setTimeout(() => this.wake(), Math.min(Math.max(delay, 0), MAX_SLEEP_MS));
    this.timer.unref();
  }

  /** Fires everything due; returns the next due time. */
  private async pass(): Promise<number | undefined> {
    const { store } = this.options;
    for (;;) {
      const due = await store.dueSchedules(Date.now(), BATCH);
      for (const schedule of due) {
        if (this.stopped) return undefined;
        await this.fire(schedule);
      }
      if (due.length < BATCH) return store.nextScheduleDue();
    }
  }

  private async fire(schedule: ScheduleRecord): Promise<void> {
    const { store, logger, types, retentionOf } = this.options;
    const now = Date.now();
    const spec = JSON.parse(schedule.spec) as ScheduleSpecRecord;
    const plan = planDueTimes(spec, schedule.nextFireAt!, now);
    let fire = plan.fire;
    let overlapSkipped = 0;
    if (spec.overlapPolicy === 'skip' && fire.length > 0) {
      // One task at a time: only the latest due time, and none while the last task still runs.
      const live = schedule.lastTaskId !== undefined && (await store.outcome(schedule.lastTaskId)) === 'live';
      overlapSkipped = live ? fire.length : fire.length - 1;
      fire = live ? [] : fire.slice(-1);
    }
    let lastMissed = plan.lastMissed === undefined ? undefined : { text: plan.lastMissed, at: now };
    let tasks: NewTask[] = [];
    try {
      tasks = fire.map((dueAt) =>
        resolveSubmit(
          { type: spec.type, input: schedule.input, options: { ...spec.options, idempotencyKey: firingKey(schedule.id, dueAt) } },
          types,
          newTaskId(now),
          now,
          retentionOf,
        ),
      );
    } catch (error) {
      // The type is gone (a server started without its service): say so in the schedule, and go on.
      const reason = error instanceof Error ? error.message : String(error);
      lastMissed = { text: `${fire.length} due time(s) up to ${iso(fire.at(-1)!)} not fired: ${reason}`, at: now };
      tasks = [];
    }
    const firing: ScheduleFiring = {
      id: schedule.id,
      version: schedule.version,
      nextFireAt: nextDue(spec, now) ?? Number.MAX_SAFE_INTEGER,
      tasks,
      ...(tasks.length === 0 ? {} : { lastFireAt: fire.at(-1)! }),
      missedSkipped: plan.missedSkipped + (tasks.length === 0 ? fire.length : 0),
      overlapSkipped,
      ...(lastMissed === undefined ? {} : { lastMissed }),
    };
    const result = await store.fireSchedule(firing, now);
    if (!result.applied) return; // another replica (or an update) got there first
    this.options.fired?.(result.tasks.filter((t) => !t.existing).length);
    if (plan.lastMissed !== undefined) logger.info({ schedule: schedule.id }, plan.lastMissed);
  }
}
