import { Cron } from 'croner';
import { invalidArgument, TaskwireError } from '../errors.js';
import type { Payload } from '../store/index.js';
import type { RequestedOptions, SubmitRequest, TaskTypeInfo } from './types.js';
import { resolveSubmit } from './validate.js';

export type MissedPolicy = 'skip' | 'once' | 'all';
export type OverlapPolicy = 'skip' | 'allow';

/** What a caller asks for; unset fields take the defaults below. */
export interface ScheduleInput {
  readonly type: string;
  readonly input?: Payload;
  readonly options?: RequestedOptions;
  readonly cron?: { readonly expression: string; readonly timeZone?: string };
  readonly intervalMs?: number;
  readonly missedPolicy?: MissedPolicy;
  readonly missedLimit?: number;
  readonly missedGraceMs?: number;
  readonly overlapPolicy?: OverlapPolicy;
}

/** A checked schedule spec, as the store keeps it (JSON; the input is stored beside it). */
export interface ScheduleSpecRecord {
  readonly type: string;
  readonly options: RequestedOptions;
  readonly cron?: { readonly expression: string; readonly timeZone: string };
  readonly intervalMs?: number;
  /** Interval due times are anchor + k × interval: the creation or last update. */
  readonly anchorMs?: number;
  readonly missedPolicy: MissedPolicy;
  readonly missedLimit: number;
  readonly missedGraceMs: number;
  readonly overlapPolicy: OverlapPolicy;
}

export const SCHEDULE_DEFAULTS = { missedPolicy: 'once', missedLimit: 10, missedGraceMs: 5_000, overlapPolicy: 'skip' } as const;
const MAX_MISSED_LIMIT = 1000;
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 366 * 24 * 3600_000;
const SCHEDULE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function checkScheduleId(id: string): void {
  if (!SCHEDULE_ID.test(id)) throw invalidArgument(`id "${id.slice(0, 40)}" must be 1..128 characters of letters, digits and _ . : -`);
}

/** The task a firing submits: idempotent per (schedule, due time). */
export const firingKey = (id: string, dueAt: number) => `taskwire-schedule/${id}/${dueAt}`;

const crons = new Map<string, Cron>();
function cronOf(expression: string, timeZone: string): Cron {
  const key = `${timeZone} ${expression}`;
  let cron = crons.get(key);
  if (cron === undefined) {
    cron = new Cron(expression, { timezone: timeZone, paused: true });
    if (crons.size > 1000) crons.clear();
    crons.set(key, cron);
  }
  return cron;
}

/** The first due time strictly after `after`; undefined if there is none (a cron that never matches again). */
export function nextDue(spec: ScheduleSpecRecord, after: number): number | undefined {
  if (spec.cron !== undefined) return cronOf(spec.cron.expression, spec.cron.timeZone).nextRun(new Date(after))?.getTime();
  const interval = spec.intervalMs!;
  const anchor = spec.anchorMs ?? 0;
  return anchor + (Math.floor((after - anchor) / interval) + 1) * interval;
}

function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
  } catch {
    throw invalidArgument(`spec.cron.time_zone "${zone.slice(0, 64)}" is not an IANA time zone: use a name such as "UTC" or "Europe/Berlin"`);
  }
}

/**
 * Checks a schedule and fills in its defaults. The task part is checked as a
 * submit would be (type, input, options), so a schedule that is accepted can
 * fire; errors name the field under `spec.`.
 */
export function checkSchedule(
  input: ScheduleInput,
  types: ReadonlyMap<string, TaskTypeInfo>,
  now: number,
): { spec: ScheduleSpecRecord; input: Payload } {
  const o = input.options ?? {};
  if (o.runAt !== undefined || o.delayMs !== undefined) {
    throw invalidArgument('spec.options.run_at and spec.options.delay must be unset: a schedule fires at its due times');
  }
  if (o.idempotencyKey) throw invalidArgument('spec.options.idempotency_key must be unset: each firing gets the key of its due time');
  const request: SubmitRequest = { type: input.type, ...(input.input === undefined ? {} : { input: input.input }), options: o };
  try {
    resolveSubmit(request, types, 'check', now);
  } catch (error) {
    if (error instanceof TaskwireError) throw invalidArgument(`spec.${error.message}`);
    throw error;
  }
  if ((input.cron === undefined) === (input.intervalMs === undefined)) {
    throw invalidArgument('spec needs exactly one of cron (an expression and a time zone) or interval');
  }
  let cron: ScheduleSpecRecord['cron'];
  if (input.cron !== undefined) {
    const expression = input.cron.expression.trim();
    if (expression === '') throw invalidArgument('spec.cron.expression is required, e.g. "*/5 * * * *" (every five minutes)');
    const timeZone = input.cron.timeZone || 'UTC';
    checkTimeZone(timeZone);
    let parsed: Cron;
    try {
      parsed = cronOf(expression, timeZone);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw invalidArgument(`spec.cron.expression "${expression.slice(0, 64)}" is not valid: ${reason}`);
    }
    if (parsed.nextRun(new Date(now)) === null) throw invalidArgument(`spec.cron.expression "${expression}" never fires after now`);
    cron = { expression, timeZone };
  }
  const intervalMs = input.intervalMs;
  if (intervalMs !== undefined && !(Number.isFinite(intervalMs) && intervalMs >= MIN_INTERVAL_MS && intervalMs <= MAX_INTERVAL_MS)) {
    throw invalidArgument(`spec.interval must be between 1s and 366 days; got ${intervalMs} ms`);
  }
  const missedLimit = input.missedLimit || SCHEDULE_DEFAULTS.missedLimit;
  if (!Number.isInteger(missedLimit) || missedLimit > MAX_MISSED_LIMIT) {
    throw invalidArgument(`spec.missed_limit must be in 1..${MAX_MISSED_LIMIT}; got ${missedLimit}`);
  }
  const missedGraceMs = input.missedGraceMs ?? SCHEDULE_DEFAULTS.missedGraceMs;
  if (!(Number.isFinite(missedGraceMs) && missedGraceMs >= 0 && missedGraceMs <= 24 * 3600_000)) {
    throw invalidArgument(`spec.missed_grace must be between 0 and 24h; got ${missedGraceMs} ms`);
  }
  const spec: ScheduleSpecRecord = {
    type: input.type,
    options: o,
    ...(cron === undefined ? {} : { cron }),
    ...(intervalMs === undefined ? {} : { intervalMs, anchorMs: now }),
    missedPolicy: input.missedPolicy ?? SCHEDULE_DEFAULTS.missedPolicy,
    missedLimit,
    missedGraceMs,
    overlapPolicy: input.overlapPolicy ?? SCHEDULE_DEFAULTS.overlapPolicy,
  };
  return { spec, input: input.input! };
}
