import type { Database, Statement } from 'better-sqlite3';
import { alreadyExists, notFound } from '../../errors.js';
import { noSchedule, toScheduleRecord, type ScheduleRow } from '../schedule-rows.js';
import type { InsertResult, NewTask, ScheduleRecord, ScheduleStore, TaskEvent } from '../types.js';

const SQL = {
  create: `
    INSERT INTO schedules (id, spec, input_type, input, paused, next_fire_at, created_at, updated_at)
    VALUES (@id, @spec, @inputType, @input, @paused, @nextFireAt, @now, @now)
    ON CONFLICT (id) DO NOTHING`,
  update: `
    UPDATE schedules SET spec = coalesce(@spec, spec), input_type = coalesce(@inputType, input_type),
      input = coalesce(@input, input), paused = coalesce(@paused, paused),
      next_fire_at = CASE WHEN @setNext THEN @nextFireAt ELSE next_fire_at END,
      version = version + 1, updated_at = @now
    WHERE id = @id`,
  lastTask: `UPDATE schedules SET last_task_id = ? WHERE id = ?`,
  remove: `DELETE FROM schedules WHERE id = ?`,
  byId: `SELECT * FROM schedules WHERE id = ?`,
  page: `SELECT * FROM schedules WHERE id > ? ORDER BY id LIMIT ?`,
  due: `SELECT * FROM schedules WHERE next_fire_at IS NOT NULL AND next_fire_at <= ? ORDER BY next_fire_at LIMIT ?`,
  nextDue: `SELECT MIN(next_fire_at) AS due FROM schedules WHERE next_fire_at IS NOT NULL`,
  fire: `
    UPDATE schedules SET next_fire_at = @nextFireAt, last_fire_at = coalesce(@lastFireAt, last_fire_at),
      fired = fired + @fired,
      missed_skipped = missed_skipped + @missedSkipped, overlap_skipped = overlap_skipped + @overlapSkipped,
      last_missed = coalesce(@lastMissed, last_missed), last_missed_at = coalesce(@lastMissedAt, last_missed_at),
      version = version + 1, updated_at = @now
    WHERE id = @id AND version = @version AND next_fire_at IS NOT NULL`,
};

export interface SqliteScheduleDeps {
  readonly db: Database;
  readonly write: <T>(run: (events: TaskEvent[]) => T) => Promise<T>;
  /** The task insert, inside the caller's write. */
  readonly insertRows: (tasks: readonly NewTask[], events: TaskEvent[]) => InsertResult[];
}

/** The SQLite store's schedules: every write through the same group commit as the tasks it fires. */
export function sqliteSchedules({ db, write, insertRows }: SqliteScheduleDeps): ScheduleStore {
  const st = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as {
    [K in keyof typeof SQL]: Statement;
  };
  const listeners = new Set<() => void>();
  const changed = <T>(value: T): T => {
    for (const listener of listeners) listener();
    return value;
  };
  const read = (id: string): ScheduleRecord | undefined => {
    const row = st.byId.get(id) as ScheduleRow | undefined;
    return row === undefined ? undefined : toScheduleRecord(row);
  };

  return {
    createSchedule(schedule, now) {
      return write(() => {
        const info = st.create.run({
          id: schedule.id,
          spec: schedule.spec,
          inputType: schedule.input.typeUrl,
          input: schedule.input.value,
          paused: schedule.paused ? 1 : 0,
          nextFireAt: schedule.nextFireAt ?? null,
          now,
        });
        if (info.changes === 0) throw alreadyExists(`a schedule with id "${schedule.id}" exists: pick another id, or update it`);
        return read(schedule.id)!;
      }).then(changed);
    },

    updateSchedule(id, change, now) {
      return write(() => {
        const info = st.update.run({
          id,
          spec: change.spec ?? null,
          inputType: change.input?.typeUrl ?? null,
          input: change.input?.value ?? null,
          paused: change.paused === undefined ? null : change.paused ? 1 : 0,
          setNext: change.nextFireAt === undefined ? 0 : 1,
          nextFireAt: change.nextFireAt ?? null,
          now,
        });
        if (info.changes === 0) throw notFound(noSchedule(id));
        return read(id)!;
      }).then(changed);
    },

    deleteSchedule(id) {
      return write(() => {
        if (st.remove.run(id).changes === 0) throw notFound(noSchedule(id));
      }).then(changed);
    },

    async getSchedule(id) {
      return read(id);
    },

    async listSchedules(pageSize, after) {
      const rows = st.page.all(after ?? '', pageSize + 1) as ScheduleRow[];
      const schedules = rows.slice(0, pageSize).map(toScheduleRecord);
      return { schedules, ...(rows.length > pageSize ? { next: schedules.at(-1)!.id } : {}) };
    },

    async dueSchedules(now, limit) {
      return (st.due.all(now, limit) as ScheduleRow[]).map(toScheduleRecord);
    },

    async nextScheduleDue() {
      return (st.nextDue.get() as { due: number | null }).due ?? undefined;
    },

    fireSchedule(firing, now) {
      return write((events) => {
        const info = st.fire.run({
          id: firing.id,
          version: firing.version,
          nextFireAt: firing.nextFireAt,
          lastFireAt: firing.lastFireAt ?? null,
          fired: firing.tasks.length,
          missedSkipped: firing.missedSkipped,
          overlapSkipped: firing.overlapSkipped,
          lastMissed: firing.lastMissed?.text ?? null,
          lastMissedAt: firing.lastMissed?.at ?? null,
          now,
        });
        if (info.changes === 0) return { applied: false as const };
        const tasks = insertRows(firing.tasks, events);
        // The task a due time names may exist already (its key): the schedule points at that one.
        if (tasks.length > 0) st.lastTask.run(tasks.at(-1)!.task.id, firing.id);
        return { applied: true as const, tasks, schedule: read(firing.id)! };
      });
    },

    onSchedulesChanged(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
