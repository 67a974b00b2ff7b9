import type { ScheduleRecord } from './types.js';

/** A schedules row as both stores read it (BIGINTs as numbers, see postgres/statements.ts). */
export interface ScheduleRow {
  id: string;
  spec: string;
  input_type: string;
  input: Uint8Array;
  paused: number | boolean;
  next_fire_at: number | null;
  last_fire_at: number | null;
  last_task_id: string | null;
  fired: number;
  missed_skipped: number;
  overlap_skipped: number;
  last_missed: string;
  last_missed_at: number | null;
  version: number;
  created_at: number;
  updated_at: number;
}

export function toScheduleRecord(row: ScheduleRow): ScheduleRecord {
  return {
    id: row.id,
    spec: row.spec,
    input: { typeUrl: row.input_type, value: new Uint8Array(row.input) },
    paused: Boolean(row.paused),
    ...(row.next_fire_at === null ? {} : { nextFireAt: row.next_fire_at }),
    ...(row.last_fire_at === null ? {} : { lastFireAt: row.last_fire_at }),
    ...(row.last_task_id === null ? {} : { lastTaskId: row.last_task_id }),
    fired: row.fired,
    missedSkipped: row.missed_skipped,
    overlapSkipped: row.overlap_skipped,
    lastMissed: row.last_missed,
    ...(row.last_missed_at === null ? {} : { lastMissedAt: row.last_missed_at }),
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Not found, in the words every schedule call uses. */
export const noSchedule = (id: string) => `no schedule with id "${id}"`;
