import type { Channel } from 'nice-grpc';
import type { Any } from '../../gen/ts/google/protobuf/any.js';
import {
  MissedPolicy,
  OverlapPolicy,
  ScheduleServiceDefinition,
  type Schedule,
  type ScheduleSpec,
} from '../../gen/ts/taskwire/v1/schedule_service.js';
import { createRpcClient } from '../rpc/index.js';
import { toTaskOptions, type SubmitOptions } from './options.js';
import { statusToTaskwireError } from './errors.js';

/** A schedule in milliseconds and words; unset fields take the server's defaults. */
export interface ScheduleSpecInput {
  /** The task type: "/pkg.Service/Method". */
  readonly type: string;
  readonly input: Any;
  /** Task options; run_at, delay and idempotency key must be unset (each firing sets them). */
  readonly options?: Omit<SubmitOptions, 'runAt' | 'delayMs' | 'idempotencyKey'>;
  /** A cron expression (5 or 6 fields) … */
  readonly cron?: string;
  /** … read in this IANA time zone (default UTC). */
  readonly timeZone?: string;
  /** Or a fixed interval, at least 1 s. */
  readonly intervalMs?: number;
  /** Due times missed while no server ran: skip them, run one task for all (default), or run each (up to `missedLimit`). */
  readonly missed?: 'skip' | 'once' | 'all';
  readonly missedLimit?: number;
  /** A due time at most this late is on time (default 5 s). */
  readonly missedGraceMs?: number;
  /** While the last task still runs: skip a due time (default), or fire anyway. */
  readonly overlap?: 'skip' | 'allow';
}

export interface ScheduleClient {
  create(id: string, spec: ScheduleSpecInput, options?: { paused?: boolean }): Promise<Schedule>;
  update(id: string, spec: ScheduleSpecInput): Promise<Schedule>;
  pause(id: string): Promise<Schedule>;
  resume(id: string): Promise<Schedule>;
  delete(id: string): Promise<void>;
  get(id: string): Promise<Schedule>;
  list(page?: { pageSize?: number; pageToken?: string }): Promise<{ schedules: Schedule[]; nextPageToken: string }>;
}

const MISSED = { skip: MissedPolicy.MISSED_POLICY_SKIP, once: MissedPolicy.MISSED_POLICY_RUN_ONCE, all: MissedPolicy.MISSED_POLICY_RUN_ALL };
const OVERLAP = { skip: OverlapPolicy.OVERLAP_POLICY_SKIP, allow: OverlapPolicy.OVERLAP_POLICY_ALLOW };
const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: Math.round(ms % 1000) * 1e6 });

export function toScheduleSpec(spec: ScheduleSpecInput): ScheduleSpec {
  return {
    type: spec.type,
    input: spec.input,
    options: toTaskOptions(spec.options ?? {}) as ScheduleSpec['options'],
    timing:
      spec.cron !== undefined
        ? { $case: 'cron', value: { expression: spec.cron, timeZone: spec.timeZone ?? '' } }
        : spec.intervalMs !== undefined
          ? { $case: 'interval', value: duration(spec.intervalMs) }
          : undefined,
    missedPolicy: spec.missed === undefined ? MissedPolicy.MISSED_POLICY_UNSPECIFIED : MISSED[spec.missed],
    missedLimit: spec.missedLimit ?? 0,
    missedGrace: spec.missedGraceMs === undefined ? undefined : duration(spec.missedGraceMs),
    overlapPolicy: spec.overlap === undefined ? OverlapPolicy.OVERLAP_POLICY_UNSPECIFIED : OVERLAP[spec.overlap],
  };
}

/** taskwire.v1.ScheduleService (admin role). */
export function scheduleClient(channel: Channel, token: string | undefined): ScheduleClient {
  const rpc = createRpcClient(ScheduleServiceDefinition, channel, { ...(token === undefined ? {} : { token }), middleware: statusToTaskwireError });
  return {
    async create(id, spec, options) {
      return (await rpc.createSchedule({ id, spec: toScheduleSpec(spec), paused: options?.paused ?? false })).schedule!;
    },
    async update(id, spec) {
      return (await rpc.updateSchedule({ id, spec: toScheduleSpec(spec) })).schedule!;
    },
    async pause(id) {
      return (await rpc.pauseSchedule({ id })).schedule!;
    },
    async resume(id) {
      return (await rpc.resumeSchedule({ id })).schedule!;
    },
    async delete(id) {
      await rpc.deleteSchedule({ id });
    },
    async get(id) {
      return (await rpc.getSchedule({ id })).schedule!;
    },
    async list(page) {
      return rpc.listSchedules({ pageSize: page?.pageSize ?? 0, pageToken: page?.pageToken ?? '' });
    },
  };
}
