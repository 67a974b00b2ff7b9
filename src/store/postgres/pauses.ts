import type pg from 'pg';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { FLAG_BATCH } from '../decisions.js';
import type { Store, TaskEvent } from '../types.js';

const QUEUED = TaskState.TASK_STATE_QUEUED;

const SQL = {
  pause: `INSERT INTO queue_pauses (queue, paused_at) VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING`,
  unpause: `DELETE FROM queue_pauses WHERE queue = $1`,
  paused: `SELECT queue FROM queue_pauses ORDER BY queue`,
  /**
   * Flags the next page of queue $1's QUEUED tasks after ($2 run_at, $3 seq),
   * $4 of them, in tasks_queued_due's order, while the queue is paused (its
   * row locked as every flag's writer locks it); returns the page's last
   * task, none at the end.
   */
  flagPage: `
    WITH pause AS (SELECT 1 FROM queue_pauses WHERE queue = $1 FOR KEY SHARE),
    page AS (
      SELECT seq, run_at FROM tasks
      WHERE queue = $1 AND state = ${QUEUED} AND (run_at, seq) > ($2::bigint, $3::bigint) AND EXISTS (SELECT 1 FROM pause)
      ORDER BY run_at, seq LIMIT $4),
    flagged AS (
      UPDATE tasks t SET paused = TRUE FROM page WHERE t.seq = page.seq AND t.state = ${QUEUED} AND NOT t.paused)
    SELECT run_at, seq, (SELECT COUNT(*) FROM page)::int AS n FROM page ORDER BY run_at DESC, seq DESC LIMIT 1`,
  /** Up to $2 flagged tasks of queue $1, through tasks_paused. */
  unflag: `
    UPDATE tasks SET paused = FALSE WHERE seq IN (
      SELECT seq FROM tasks WHERE queue = $1 AND state = ${QUEUED} AND paused LIMIT $2)`,
  unflagAll: `UPDATE tasks SET paused = FALSE WHERE queue = $1 AND state = ${QUEUED} AND paused`,
};

type Write = <T>(run: (client: pg.PoolClient, events: TaskEvent[]) => Promise<T>) => Promise<T>;

/**
 * Queue pauses on PostgreSQL, shared by every replica (the rule is
 * decisions.ts's `READY`). A pause commits its row, then flags the queue's
 * QUEUED tasks FLAG_BATCH per commit. A write that put a task in QUEUED
 * while the pause committed may leave it unflagged: claims still skip it
 * (they read queue_pauses), it only stays in the ready index, and pausing
 * again flags it. A resume clears the flags in batches while the queue is
 * still paused, then deletes the row and clears the rest in one transaction:
 * the delete waits for every write that locked the row to flag a task, so
 * the clear sees them all, and no task stays flagged in a running queue.
 */
export function postgresPauses(options: {
  readonly pool: pg.Pool;
  readonly write: Write;
  /** NOTIFY the other replicas, inside the transaction. */
  readonly announce: (client: pg.PoolClient, queue: string, paused: boolean) => Promise<void>;
  /** This replica's listeners, after the commit. */
  readonly changed: (queue: string, paused: boolean) => void;
}): Pick<Store, 'pauseQueue' | 'resumeQueue' | 'pausedQueues'> {
  const { pool, write, announce, changed } = options;
  const count = (result: pg.QueryResult) => result.rowCount ?? 0;

  return {
    async pauseQueue(queue, now) {
      const paused = await write(async (client) => {
        const paused = count(await client.query(SQL.pause, [queue, now])) > 0;
        if (paused) await announce(client, queue, true);
        return paused;
      });
      if (paused) changed(queue, true);
      // Also when it was paused already: a pause stopped half way is finished by the next.
      let after = [-1, 0];
      for (;;) {
        const { rows } = await write((client) =>
          client.query<{ run_at: number; seq: number; n: number }>(SQL.flagPage, [queue, after[0], after[1], FLAG_BATCH]),
        );
        const last = rows[0];
        if (last === undefined || last.n < FLAG_BATCH) return paused;
        after = [last.run_at, last.seq];
      }
    },

    async resumeQueue(queue) {
      while ((await write(async (client) => count(await client.query(SQL.unflag, [queue, FLAG_BATCH])))) === FLAG_BATCH);
      const resumed = await write(async (client) => {
        const resumed = count(await client.query(SQL.unpause, [queue])) > 0;
        await client.query(SQL.unflagAll, [queue]);
        if (resumed) await announce(client, queue, false);
        return resumed;
      });
      if (resumed) changed(queue, false);
      return resumed;
    },

    async pausedQueues() {
      const { rows } = await pool.query<{ queue: string }>(SQL.paused);
      return rows.map((row) => row.queue);
    },
  };
}
