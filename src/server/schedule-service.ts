import type { TaskOptions } from '../../gen/ts/taskwire/v1/task.js';
import {
  MissedPolicy,
  OverlapPolicy,
  type Schedule,
  type ScheduleServiceImplementation,
  type ScheduleSpec,
} from '../../gen/ts/taskwire/v1/schedule_service.js';
import type { Broker, ScheduleInput, ScheduleView, RequestedOptions } from '../broker/index.js';
import { invalidArgument } from '../errors.js';
import type { TaskwireCallContext } from '../rpc/index.js';
import { durationToMs, msToDuration } from '../contract.js';
import { toAny, toSubmitRequest } from './convert.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './task-service.js';

const MISSED = { [MissedPolicy.MISSED_POLICY_SKIP]: 'skip', [MissedPolicy.MISSED_POLICY_RUN_ONCE]: 'once', [MissedPolicy.MISSED_POLICY_RUN_ALL]: 'all' } as const;
const OVERLAP = { [OverlapPolicy.OVERLAP_POLICY_SKIP]: 'skip', [OverlapPolicy.OVERLAP_POLICY_ALLOW]: 'allow' } as const;
const date = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));

/** ScheduleSpec (proto) → what the broker checks. */
function toScheduleInput(spec: ScheduleSpec | undefined): ScheduleInput {
  if (spec === undefined) throw invalidArgument('spec is required: the task type, its input and a cron expression or an interval');
  const missed = spec.missedPolicy === MissedPolicy.MISSED_POLICY_UNSPECIFIED ? undefined : MISSED[spec.missedPolicy as keyof typeof MISSED];
  if (spec.missedPolicy !== MissedPolicy.MISSED_POLICY_UNSPECIFIED && missed === undefined) {
    throw invalidArgument(`spec.missed_policy ${spec.missedPolicy} is not a MissedPolicy: use SKIP (1), RUN_ONCE (2) or RUN_ALL (3)`);
  }
  const overlap = spec.overlapPolicy === OverlapPolicy.OVERLAP_POLICY_UNSPECIFIED ? undefined : OVERLAP[spec.overlapPolicy as keyof typeof OVERLAP];
  if (spec.overlapPolicy !== OverlapPolicy.OVERLAP_POLICY_UNSPECIFIED && overlap === undefined) {
    throw invalidArgument(`spec.overlap_policy ${spec.overlapPolicy} is not an OverlapPolicy: use SKIP (1) or ALLOW (2)`);
  }
  const task = toSubmitRequest({ type: spec.type, input: spec.input, options: spec.options });
  const timing = spec.timing;
  return {
    type: task.type,
    ...(task.input === undefined ? {} : { input: task.input }),
    ...(task.options === undefined ? {} : { options: task.options }),
    ...(timing?.$case === 'cron' ? { cron: { expression: timing.value.expression, timeZone: timing.value.timeZone } } : {}),
    ...(timing?.$case === 'interval' ? { intervalMs: durationToMs(timing.value)! } : {}),
    ...(missed === undefined ? {} : { missedPolicy: missed }),
    missedLimit: spec.missedLimit,
    ...(spec.missedGrace === undefined ? {} : { missedGraceMs: durationToMs(spec.missedGrace)! }),
    ...(overlap === undefined ? {} : { overlapPolicy: overlap }),
  };
}

function toTaskOptions(o: RequestedOptions): TaskOptions {
  return {
    queue: o.queue ?? '',
    ...(o.priority === undefined ? {} : { priority: o.priority }),
    maxAttempts: o.maxAttempts ?? 0,
    ...(o.backoff === undefined
      ? {}
      : {
          backoff: {
            initial: msToDuration(o.backoff.initialMs),
            max: msToDuration(o.backoff.maxMs),
            multiplier: o.backoff.multiplier ?? 0,
            ...(o.backoff.jitter === undefined ? {} : { jitter: o.backoff.jitter }),
          },
        }),
    executionTimeout: msToDuration(o.executionTimeoutMs),
    queueTimeout: msToDuration(o.queueTimeoutMs),
    idempotencyKey: '',
    labels: { ...o.labels },
    traceContext: { ...o.traceContext },
    concurrencyKey: o.concurrencyKey ?? '',
    concurrencyLimit: o.concurrencyLimit ?? 0,
  };
}

const byName = <T extends Record<number, string>>(table: T, name: string) =>
  Number(Object.entries(table).find(([, value]) => value === name)![0]);

export function toSchedule({ record, spec }: ScheduleView): Schedule {
  return {
    id: record.id,
    paused: record.paused,
    spec: {
      type: spec.type,
      input: toAny(record.input),
      options: toTaskOptions(spec.options),
      timing:
        spec.cron !== undefined
          ? { $case: 'cron', value: { expression: spec.cron.expression, timeZone: spec.cron.timeZone } }
          : { $case: 'interval', value: msToDuration(spec.intervalMs)! },
      missedPolicy: byName(MISSED, spec.missedPolicy),
      missedLimit: spec.missedLimit,
      missedGrace: msToDuration(spec.missedGraceMs),
      overlapPolicy: byName(OVERLAP, spec.overlapPolicy),
    },
    state: {
      nextFireTime: date(record.nextFireAt),
      lastFireTime: date(record.lastFireAt),
      lastTaskId: record.lastTaskId ?? '',
      fired: record.fired,
      missedSkipped: record.missedSkipped,
      overlapSkipped: record.overlapSkipped,
      lastMissed: record.lastMissed,
      lastMissedTime: date(record.lastMissedAt),
    },
    createTime: new Date(record.createdAt),
    updateTime: new Date(record.updatedAt),
  };
}

const encodeToken = (id: string) => Buffer.from(id).toString('base64url');
function decodeToken(token: string): string {
  const id = Buffer.from(token, 'base64url').toString();
  if (encodeToken(id) !== token) throw invalidArgument('page_token is not one this server gave: pass next_page_token as it came');
  return id;
}

/** taskwire.v1.ScheduleService on the broker's schedules (admin role; see access.ts). */
export function createScheduleService(broker: Broker): ScheduleServiceImplementation<TaskwireCallContext> {
  const { schedules } = broker;
  return {
    async createSchedule(request) {
      return { schedule: toSchedule(await schedules.create(request.id, toScheduleInput(request.spec), request.paused)) };
    },
    async updateSchedule(request) {
      return { schedule: toSchedule(await schedules.update(request.id, toScheduleInput(request.spec))) };
    },
    async pauseSchedule(request) {
      return { schedule: toSchedule(await schedules.pause(request.id)) };
    },
    async resumeSchedule(request) {
      return { schedule: toSchedule(await schedules.resume(request.id)) };
    },
    async deleteSchedule(request) {
      await schedules.delete(request.id);
      return {};
    },
    async getSchedule(request) {
      return { schedule: toSchedule(await schedules.get(request.id)) };
    },
    async listSchedules(request) {
      if (request.pageSize > MAX_PAGE_SIZE) throw invalidArgument(`page_size must be at most ${MAX_PAGE_SIZE}; got ${request.pageSize}`);
      const page = await schedules.list(request.pageSize || DEFAULT_PAGE_SIZE, request.pageToken === '' ? undefined : decodeToken(request.pageToken));
      return { schedules: page.schedules.map(toSchedule), nextPageToken: page.next === undefined ? '' : encodeToken(page.next) };
    },
  };
}
