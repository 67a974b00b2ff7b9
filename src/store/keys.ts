/** The most tasks one key may run at once (TaskOptions.concurrency_limit). */
export const MAX_CONCURRENCY_LIMIT = 1000;

/** Per queue and key with tasks waiting: how many wait and how many run (through tasks_keys, its WHERE word for word). */
export const waitingKeysSql = (queueParam: string | undefined) => `
  SELECT queue, concurrency_key AS key,
    SUM(CASE WHEN state = 3 THEN 0 ELSE 1 END) AS waiting, SUM(CASE WHEN state = 3 THEN 1 ELSE 0 END) AS running
  FROM tasks WHERE concurrency_key IS NOT NULL AND state IN (1, 2, 3)${queueParam === undefined ? '' : ` AND queue = ${queueParam}`}
  GROUP BY queue, concurrency_key HAVING SUM(CASE WHEN state = 3 THEN 0 ELSE 1 END) > 0`;

/** The key's live tasks older than the candidate `t`: RUNNING, QUEUED, or SCHEDULED for a retry. */
const OLDER_LIVE = `SELECT 1 FROM tasks u WHERE u.concurrency_key = t.concurrency_key AND u.seq < t.seq
                AND u.concurrency_key IS NOT NULL AND u.state IN (1, 2, 3) AND (u.state <> 1 OR u.attempt > 0)`;

/** The key's RUNNING tasks newer than `t` (one that was delayed, or revived, runs after them): tasks_keys_running. */
const NEWER_RUNNING = `SELECT 1 FROM tasks u WHERE u.concurrency_key = t.concurrency_key
                AND u.concurrency_key IS NOT NULL AND u.state = 3 AND u.seq > t.seq`;

/**
 * A task with a concurrency key may start only while fewer than its limit of
 * the key's older tasks are live and its newer ones running: so at most
 * `limit` run at once, in submission order, and a retry waiting out its
 * backoff keeps its place. (A task delayed by run_at joins its key's order
 * when it comes due; until then it holds no place.)
 * Read through the tasks_keys index (its WHERE repeated word for word); at
 * limit 1, the usual case, one probe (NOT EXISTS). A key whose turn has not
 * come is skipped, never blocking other keys or types. Both stores' claims
 * use it (`t` is the candidate row); SQLite takes no column in a LIMIT, so
 * larger limits count at most MAX_CONCURRENCY_LIMIT rows.
 */
export const KEY_HAS_ROOM = `(t.concurrency_key IS NULL
            OR (t.concurrency_limit = 1 AND NOT EXISTS (${OLDER_LIVE}) AND NOT EXISTS (${NEWER_RUNNING}))
            OR (t.concurrency_limit > 1
              AND (SELECT COUNT(*) FROM (${OLDER_LIVE} LIMIT ${MAX_CONCURRENCY_LIMIT}) AS older)
                + (SELECT COUNT(*) FROM (${NEWER_RUNNING} LIMIT ${MAX_CONCURRENCY_LIMIT}) AS newer) < t.concurrency_limit))`;
