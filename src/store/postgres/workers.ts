import type pg from 'pg';
import type { SharedWorkers, WorkerEntry } from '../types.js';
import { SQL } from './statements.js';

interface WorkerRow {
  session_id: string;
  replica: string;
  worker_id: string;
  task_types: string;
  slots: number;
  running: number;
  labels: string;
  version: string;
  peer: string;
  connected_at: number;
  last_seen_at: number;
}

/**
 * Every replica's worker sessions in the `workers` table. Plain statements on
 * the pool, outside the group commit: a session's row is an announcement,
 * not task state, and losing one to a failed write only delays it until the
 * next refresh.
 */
export function sharedWorkers(pool: pg.Pool): SharedWorkers {
  return {
    async put(entries, expiresAt) {
      if (entries.length === 0) return;
      const column = <T>(pick: (entry: WorkerEntry) => T) => entries.map(pick);
      await pool.query(SQL.putWorkers, [
        column((e) => e.sessionId),
        column((e) => e.replica),
        column((e) => e.workerId),
        column((e) => JSON.stringify(e.taskTypes)),
        column((e) => e.slots),
        column((e) => e.running),
        column((e) => JSON.stringify(e.labels)),
        column((e) => e.version),
        column((e) => e.peer),
        column((e) => e.connectedAt),
        column((e) => e.lastSeenAt),
        expiresAt,
      ]);
    },

    async remove(sessionIds) {
      if (sessionIds.length > 0) await pool.query(SQL.removeWorkers, [sessionIds]);
    },

    async list(now) {
      await pool.query(SQL.expireWorkers, [now]);
      const { rows } = await pool.query<WorkerRow>(SQL.listWorkers, [now]);
      return rows.map((row) => ({
        replica: row.replica,
        sessionId: row.session_id,
        workerId: row.worker_id,
        taskTypes: JSON.parse(row.task_types) as string[],
        slots: row.slots,
        running: row.running,
        labels: JSON.parse(row.labels) as Record<string, string>,
        version: row.version,
        peer: row.peer,
        connectedAt: row.connected_at,
        lastSeenAt: row.last_seen_at,
      }));
    },
  };
}
