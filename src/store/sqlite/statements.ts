import type { Database, Statement } from 'better-sqlite3';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { queuePausedSql, READY, retentionExpirySql } from '../decisions.js';
import { KEY_HAS_ROOM } from '../keys.js';
import { OLDEST_QUEUED_SQL, outcomeColumns } from '../rows.js';
import { stateIn, transitions } from '../transitions.js';

const S = TaskState;
const PAUSED = (queue: string) => queuePausedSql('sqlite', queue);

/** The store's fixed statements, by name. */
const SQL = {
  insert: `
    INSERT INTO tasks (id, type, queue, state, priority, input_type, input, labels, trace_context, metadata,
      max_attempts, backoff, execution_timeout_ms, queue_timeout_ms, queue_deadline_at, idempotency_key, run_at,
      created_at, updated_at, attempt, lease_owner, worker_id, lease_expires_at, started_at, deadline_at,
      retain_succeeded_ms, retain_failed_ms, retain_cancelled_ms, concurrency_key, concurrency_limit, paused)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
      ${PAUSED('?')})
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
  byKey: `SELECT * FROM tasks WHERE idempotency_key = ?`,
  byId: `SELECT * FROM tasks WHERE id = ?`,
  outcomeById: `SELECT ${outcomeColumns(`json_extract(errors, '$[#-1]')`)} FROM tasks WHERE id = ?`,
  complete: `
    UPDATE tasks SET state = ${transitions.complete.to}, output_type = ?, output = ?, finished_at = ?, updated_at = ?,
      expires_at = ${retentionExpirySql('?', S.TASK_STATE_SUCCEEDED)}, lease_expires_at = NULL, deadline_at = NULL, progress_percent = 100
    WHERE id = ? AND attempt = ? AND ${stateIn(transitions.complete.from)}
    RETURNING type, queue, lease_owner, started_at, concurrency_key`,
  running: `
    SELECT type, queue, failures, max_attempts, backoff, retain_failed_ms, lease_owner, started_at, concurrency_key FROM tasks
    WHERE id = ? AND attempt = ? AND state = ${S.TASK_STATE_RUNNING}`,
  /** A failed attempt, as `decideFail` decided: retried (@runAt) or the dead letter (@finishedAt, @expiresAt). */
  fail: `
    UPDATE tasks SET state = @state, failures = failures + 1, errors = json_insert(errors, '$[#]', json(@error)), updated_at = @now,
      run_at = COALESCE(@runAt, run_at), finished_at = COALESCE(@finishedAt, finished_at), expires_at = @expiresAt,
      lease_expires_at = NULL, deadline_at = NULL
    WHERE id = @id AND attempt = @attempt AND ${stateIn(transitions.fail.from)}`,
  release: `
    UPDATE tasks SET state = ${transitions.release.to}, updated_at = ?, lease_expires_at = NULL, deadline_at = NULL,
      progress_percent = 0, progress_message = '', paused = ${PAUSED('tasks.queue')}
    WHERE id = ? AND attempt = ? AND ${stateIn(transitions.release.from)}
    RETURNING type, queue, lease_owner, started_at, concurrency_key`,
  progress: `
    UPDATE tasks SET progress_percent = ?, progress_message = ?
    WHERE id = ? AND attempt = ? AND state = ${S.TASK_STATE_RUNNING}
    RETURNING type, queue`,
  renew: `
    UPDATE tasks SET lease_expires_at = ?
    WHERE id = ? AND attempt = ? AND lease_owner = ? AND state = ${S.TASK_STATE_RUNNING}`,
  extendLeases: `
    UPDATE tasks SET lease_expires_at = @until
    WHERE state = ${S.TASK_STATE_RUNNING} AND lease_expires_at < @until`,
  resume: `
    UPDATE tasks SET lease_owner = ?, lease_expires_at = ?
    WHERE id = ? AND attempt = ? AND worker_id = ? AND state = ${S.TASK_STATE_RUNNING}
    RETURNING type`,
  cancel: `
    UPDATE tasks SET state = ${transitions.cancel.to}, cancel_reason = ?, finished_at = ?, updated_at = ?,
      expires_at = ${retentionExpirySql('?', S.TASK_STATE_CANCELLED)}, lease_expires_at = NULL, deadline_at = NULL
    WHERE id = ? AND ${stateIn(transitions.cancel.from)}`,
  revive: `
    UPDATE tasks SET state = ${transitions.revive.to}, failures = 0, run_at = ?, updated_at = ?, finished_at = NULL, expires_at = NULL,
      cancel_reason = NULL, output_type = NULL, output = NULL, progress_percent = 0, progress_message = '',
      paused = ${PAUSED('tasks.queue')}
    WHERE id = ? AND ${stateIn(transitions.revive.from)}`,
  promote: `
    UPDATE tasks SET state = ${transitions.promote.to}, updated_at = ?, paused = ${PAUSED('tasks.queue')}
    WHERE ${stateIn(transitions.promote.from)} AND run_at <= ?
    RETURNING id, type, queue, attempt`,
  expire: `
    UPDATE tasks SET state = ${transitions.expire.to}, finished_at = @now, updated_at = @now,
      expires_at = ${retentionExpirySql('@now', S.TASK_STATE_FAILED)}, errors = json_insert(errors, '$[#]', json(@error))
    WHERE ${stateIn(transitions.expire.from)} AND queue_deadline_at <= @now
    RETURNING id, type, queue, attempt, state`,
  leaseExpired: `
    SELECT id, attempt, lease_owner FROM tasks
    WHERE state = ${S.TASK_STATE_RUNNING} AND lease_expires_at <= ? LIMIT ?`,
  deadlinePassed: `
    SELECT id, attempt, lease_owner FROM tasks
    WHERE state = ${S.TASK_STATE_RUNNING} AND deadline_at IS NOT NULL AND deadline_at <= ? LIMIT ?`,
  /** The partial index tasks_expiry holds only rows with an expiry: the condition is repeated for it. */
  deleteExpired: `
    DELETE FROM tasks WHERE seq IN (
      SELECT seq FROM tasks WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?)
    RETURNING queue, state`,
  countByState: `SELECT state, COUNT(*) AS n FROM tasks GROUP BY state`,
  oldestQueued: OLDEST_QUEUED_SQL,
  statsAll: `SELECT queue, state, COUNT(*) AS n FROM tasks GROUP BY queue, state ORDER BY queue`,
  statsQueue: `SELECT queue, state, COUNT(*) AS n FROM tasks WHERE queue = ? GROUP BY queue, state`,
  delete: `DELETE FROM tasks WHERE id = ? AND ${stateIn(transitions.delete.from)}`,
};

/** `Store.purge`'s statement: up to @limit finished tasks of @queue in the given states, finished before @before (if set). */
export const purgeSql = (states: readonly number[]) => `
  DELETE FROM tasks WHERE seq IN (
    SELECT seq FROM tasks WHERE queue = @queue AND state IN (${states.join(', ')})
      AND (@before IS NULL OR finished_at < @before)
    LIMIT @limit)
  RETURNING queue, state`;

export type Statements = { readonly [K in keyof typeof SQL]: Statement };

/** Every statement the store runs, prepared once per database. */
export function prepareStatements(db: Database): {
  st: Statements;
  claimStatement(types: readonly string[]): Statement;
  prepared(sql: string): Statement;
} {
  const st = Object.fromEntries(Object.entries(SQL).map(([name, sql]) => [name, db.prepare(sql)])) as Statements;

  /** Claim statements, one per set of task types (workers mostly share a few sets). */
  const claimStatements = new Map<string, Statement>();
  function claimStatement(types: readonly string[]): Statement {
    const key = types.join('\n');
    let statement = claimStatements.get(key);
    if (statement === undefined) {
      statement = db.prepare(`
        UPDATE tasks SET state = ${transitions.claim.to}, attempt = attempt + 1, lease_owner = @owner,
          worker_id = @workerId, lease_expires_at = @leaseExpiresAt, started_at = @now, updated_at = @now,
          deadline_at = CASE WHEN execution_timeout_ms IS NULL THEN NULL ELSE @now + execution_timeout_ms END,
          queue_deadline_at = NULL, progress_percent = 0, progress_message = ''
        WHERE seq IN (
          SELECT seq FROM tasks t WHERE ${READY}
            AND type IN (${types.map(() => '?').join(', ')})
            AND ${KEY_HAS_ROOM}
            AND NOT EXISTS (SELECT 1 FROM queue_pauses p WHERE p.queue = t.queue)
          ORDER BY priority DESC, seq LIMIT @limit)
        RETURNING id, type, attempt, input_type, input, queue, max_attempts, deadline_at, metadata, run_at, started_at`);
      claimStatements.set(key, statement);
    }
    return statement;
  }

  /** Statements built from a filter (filter.ts), prepared once per shape: a shape is a few fields set. */
  const filtered = new Map<string, Statement>();
  function prepared(sql: string): Statement {
    let statement = filtered.get(sql);
    if (statement === undefined) {
      if (filtered.size >= 256) filtered.clear(); // label filters make shapes without bound
      statement = db.prepare(sql);
      filtered.set(sql, statement);
    }
    return statement;
  }

  return { st, claimStatement, prepared };
}
