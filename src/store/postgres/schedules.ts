import type pg from 'pg';
import { alreadyExists, notFound } from '../../errors.js';
import { noSchedule, toScheduleRecord, type ScheduleRow } from '../schedule-rows.js';
import type { InsertResult, NewTask, ScheduleStore, TaskEvent } from '../types.js';

const SQL = {
  create: `
    INSERT INTO schedules (id, spec, input_type, input, paused, next_fire_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
    ON CONFLICT (id) DO NOTHING RETURNING *`,
  update: `
    UPDATE schedules SET spec = coalesce($2, spec), input_type = coalesce($3, input_type), input = coalesce($4, input),
      paused = coalesce($5, paused), next_fire_at = CASE WHEN $6 THEN $7::bigint ELSE next_fire_at END,
      version = version + 1, updated_at = $8
    WHERE id = $1 RETURNING *`,
  remove: `DELETE FROM schedules WHERE id = $1`,
  byId: `SELECT * FROM schedules WHERE id = $1`,
  page: `SELECT * FROM schedules WHERE id > $1 ORDER BY id LIMIT $2`,
  due: `SELECT * FROM schedules WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2`,
  nextDue: `SELECT MIN(next_fire_at) AS due FROM schedules WHERE next_fire_at IS NOT NULL`,
  /** The fence: a replica that fired first moved `version` on, and this one changes nothing (under the row lock). */
  fire: `
    UPDATE schedules SET next_fire_at = $3, last_fire_at = coalesce($4, last_fire_at), fired = fired + $5,
      missed_skipped = missed_skipped + $6, overlap_skipped = overlap_skipped + $7,
      last_missed = coalesce($8, last_missed), last_missed_at = coalesce($9, last_missed_at),
      version = version + 1, updated_at = $10
    WHERE id = $1 AND version = $2 AND next_fire_at IS NOT NULL`,
  lastTask: `UPDATE schedules SET last_task_id = coalesce($2, last_task_id) WHERE id = $1 RETURNING *`,
};

export interface PostgresScheduleDeps {
  readonly pool: pg.Pool;
  readonly write: <T>(run: (client: pg.PoolClient, events: TaskEvent[]) => Promise<T>) => Promise<T>;
  /** The task insert, inside the caller's transaction. */
  readonly insertRows: (client: pg.PoolClient, tasks: readonly NewTask[], events: TaskEvent[]) => Promise<InsertResult[]>;
  /** NOTIFYs other replicas from inside the transaction that changed a schedule. */
  readonly announce: (client: pg.PoolClient) => Promise<void>;
  /** Registers for other replicas' announcements. */
  readonly onRemoteChange: (listener: () => void) => void;
}

/** The PostgreSQL store's schedules: a firing is one transaction with the tasks it inserts. */
export function postgresSchedules({ pool, write, insertRows, announce, onRemoteChange }: PostgresScheduleDeps): ScheduleStore {
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  onRemoteChange(notify);
  const changed = <T>(value: T): T => {
    notify();
    return value;
  };
  const one = (rows: ScheduleRow[]) => toScheduleRecord(rows[0]!);

  return {
    createSchedule(schedule, now) {
      return write(async (client) => {
        const { rows } = await client.query<ScheduleRow>(SQL.create, [
          schedule.id,
          schedule.spec,
          schedule.input.typeUrl,
          Buffer.from(schedule.input.value),
          schedule.paused,
          schedule.nextFireAt ?? null,
          now,
        ]);
        if (rows.length === 0) throw alreadyExists(`a schedule with id "${schedule.id}" exists: pick another id, or update it`);
        await announce(client);
        return one(rows);
      }).then(changed);
    },

    updateSchedule(id, change, now) {
      return write(async (client) => {
        const { rows } = await client.query<ScheduleRow>(SQL.update, [
          id,
          change.spec ?? null,
          change.input?.typeUrl ?? null,
          change.input === undefined ? null : Buffer.from(change.input.value),
          change.paused ?? null,
          change.nextFireAt !== undefined,
          change.nextFireAt ?? null,
          now,
        ]);
        if (rows.length === 0) throw notFound(noSchedule(id));
        await announce(client);
        return one(rows);
      }).then(changed);
    },

    deleteSchedule(id) {
      return write(async (client) => {
        const result = await client.query(SQL.remove, [id]);
        if (result.rowCount === 0) throw notFound(noSchedule(id));
        await announce(client);
      }).then(changed);
    },

    async getSchedule(id) {
      const { rows } = await pool.query<ScheduleRow>(SQL.byId, [id]);
      return rows.length === 0 ? undefined : one(rows);
    },

    async listSchedules(pageSize, after) {
      const { rows } = await pool.query<ScheduleRow>(SQL.page, [after ?? '', pageSize + 1]);
      const schedules = rows.slice(0, pageSize).map(toScheduleRecord);
      return { schedules, ...(rows.length > pageSize ? { next: schedules.at(-1)!.id } : {}) };
    },

    async dueSchedules(now, limit) {
      const { rows } = await pool.query<ScheduleRow>(SQL.due, [now, limit]);
      return rows.map(toScheduleRecord);
    },

    async nextScheduleDue() {
      const { rows } = await pool.query<{ due: number | null }>(SQL.nextDue);
      return rows[0]?.due ?? undefined;
    },

    fireSchedule(firing, now) {
      return write(async (client, events) => {
        const result = await client.query(SQL.fire, [
          firing.id,
          firing.version,
          firing.nextFireAt,
          firing.lastFireAt ?? null,
          firing.tasks.length,
          firing.missedSkipped,
          firing.overlapSkipped,
          firing.lastMissed?.text ?? null,
          firing.lastMissed?.at ?? null,
          now,
        ]);
        if (result.rowCount === 0) return { applied: false as const };
        const tasks = await insertRows(client, firing.tasks, events);
        const { rows } = await client.query<ScheduleRow>(SQL.lastTask, [firing.id, tasks.at(-1)?.task.id ?? null]);
        return { applied: true as const, tasks, schedule: one(rows) };
      });
    },

    onSchedulesChanged(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
