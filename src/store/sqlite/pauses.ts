import type { Database, Statement } from 'better-sqlite3';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { FLAG_BATCH } from '../decisions.js';
import type { Store, TaskEvent } from '../types.js';

const QUEUED = TaskState.TASK_STATE_QUEUED;

const SQL = {
  pause: `INSERT INTO queue_pauses (queue, paused_at) VALUES (?, ?) ON CONFLICT (queue) DO NOTHING`,
  unpause: `DELETE FROM queue_pauses WHERE queue = ?`,
  paused: `SELECT queue FROM queue_pauses ORDER BY queue`,
  /**
   * The next page of a paused queue's QUEUED tasks after (@runAt, @seq), in
   * tasks_queued_due's order (its key, then the rowid); empty once the queue
   * is not paused. Two seeks: `(run_at, seq) > (…)` would seek on run_at
   * alone and read every task due at @runAt again (all of a backlog
   * submitted without a delay) on each page.
   */
  page: `
    SELECT seq, run_at FROM (
      SELECT * FROM (
        SELECT seq, run_at FROM tasks WHERE queue = @queue AND state = ${QUEUED} AND run_at = @runAt AND seq > @seq
        ORDER BY seq LIMIT @limit)
      UNION ALL
      SELECT * FROM (
        SELECT seq, run_at FROM tasks WHERE queue = @queue AND state = ${QUEUED} AND run_at > @runAt
        ORDER BY run_at, seq LIMIT @limit))
    WHERE EXISTS (SELECT 1 FROM queue_pauses WHERE queue = @queue)
    ORDER BY run_at, seq LIMIT @limit`,
  flag: `UPDATE tasks SET paused = TRUE WHERE seq = ? AND NOT paused`,
  /** Up to ? flagged tasks of the queue, through tasks_paused (its WHERE repeated). */
  unflag: `
    UPDATE tasks SET paused = FALSE WHERE seq IN (
      SELECT seq FROM tasks WHERE queue = ? AND state = ${QUEUED} AND paused LIMIT ?)`,
  unflagAll: `UPDATE tasks SET paused = FALSE WHERE queue = ? AND state = ${QUEUED} AND paused`,
};

type PauseStore = Pick<Store, 'pauseQueue' | 'resumeQueue' | 'pausedQueues' | 'onQueuePause'>;

/**
 * Queue pauses on SQLite (the rule is decisions.ts's `READY`). Every write
 * is serialised, so each one that puts a task in QUEUED sees the pause row
 * as it is: the flags are exact. A pause commits its row, then flags the
 * queue's QUEUED tasks FLAG_BATCH per commit; a resume clears them the same
 * way while the queue is still paused (claims still skip them), then deletes
 * the row and clears the last few in one commit, so no task is left flagged
 * in a queue that is not paused, whenever the process stops.
 */
export function sqlitePauses(db: Database, write: <T>(run: (events: TaskEvent[]) => T) => Promise<T>): PauseStore {
  const st = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as {
    [K in keyof typeof SQL]: Statement;
  };
  const listeners = new Set<(queue: string, paused: boolean) => void>();

  return {
    async pauseQueue(queue, now) {
      const changed = await write(() => st.pause.run(queue, now).changes > 0);
      if (changed) for (const listener of listeners) listener(queue, true);
      // Also when it was paused already: a pause stopped half way is finished by the next.
      let after = { runAt: -1, seq: 0 };
      for (;;) {
        const page = await write(() => {
          const rows = st.page.all({ queue, ...after, limit: FLAG_BATCH }) as Array<{ seq: number; run_at: number }>;
          for (const row of rows) st.flag.run(row.seq);
          return rows;
        });
        if (page.length < FLAG_BATCH) return changed;
        const last = page[page.length - 1]!;
        after = { runAt: last.run_at, seq: last.seq };
      }
    },

    async resumeQueue(queue) {
      while ((await write(() => st.unflag.run(queue, FLAG_BATCH).changes)) === FLAG_BATCH);
      const changed = await write(() => {
        const changed = st.unpause.run(queue).changes > 0;
        st.unflagAll.run(queue); // what was flagged since the last batch
        return changed;
      });
      if (changed) for (const listener of listeners) listener(queue, false);
      return changed;
    },

    async pausedQueues() {
      return (st.paused.all() as Array<{ queue: string }>).map((row) => row.queue);
    },

    onQueuePause(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
