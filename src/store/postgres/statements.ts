import pg from 'pg';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { OLDEST_QUEUED_SQL, outcomeColumns } from '../rows.js';
import { queuePausedSql, READY, retentionExpirySql } from '../decisions.js';
import { KEY_HAS_ROOM } from '../keys.js';
import { stateIn, transitions } from '../transitions.js';

const S = TaskState;
const PAUSED = (queue: string) => queuePausedSql('postgres', queue);

/** BIGINT columns hold epoch milliseconds and counters: numbers, not strings. */
export const pgTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Columns in the shape of TaskRow: errors as text, BIGINTs parsed as numbers (see `pgTypes`). */
export const ROW = `seq, id, type, queue, state, priority, input_type, input, output_type, output, labels, trace_context, attempt,
  failures, max_attempts, backoff, errors::text AS errors, execution_timeout_ms, queue_timeout_ms, idempotency_key, run_at,
  created_at, updated_at, started_at, finished_at, worker_id, lease_owner, lease_expires_at, deadline_at, progress_percent,
  progress_message, cancel_reason, retain_succeeded_ms, retain_failed_ms, retain_cancelled_ms, concurrency_key, concurrency_limit`;

/**
 * The store's statements, by name. Batches travel as one array per column,
 * unnested into rows, so a batch is one statement whatever its size.
 */
export const SQL = {
  /** $1–$23, $25–$29: one array per column; $24: now. */
  insert: `
    INSERT INTO tasks (id, type, queue, state, priority, input_type, input, labels, trace_context, metadata,
      max_attempts, backoff, execution_timeout_ms, queue_timeout_ms, queue_deadline_at, idempotency_key, run_at,
      attempt, lease_owner, worker_id, lease_expires_at, started_at, deadline_at, retain_succeeded_ms,
      retain_failed_ms, retain_cancelled_ms, concurrency_key,
      concurrency_limit, created_at, updated_at, paused)
    SELECT u.*, $24::bigint, $24::bigint, ${PAUSED('u.queue')} FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::int[],
      $6::text[], $7::bytea[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[], $13::bigint[],
      $14::bigint[], $15::bigint[], $16::text[], $17::bigint[], $18::int[], $19::text[], $20::text[],
      $21::bigint[], $22::bigint[], $23::bigint[], $25::bigint[], $26::bigint[], $27::bigint[], $28::text[],
      $29::int[]) AS u (id, type, queue, state, priority, input_type, input, labels, trace_context, metadata,
        max_attempts, backoff, execution_timeout_ms, queue_timeout_ms, queue_deadline_at, idempotency_key, run_at,
        attempt, lease_owner, worker_id, lease_expires_at, started_at, deadline_at, retain_succeeded_ms,
        retain_failed_ms, retain_cancelled_ms, concurrency_key, concurrency_limit)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id`,
  byKey: `SELECT ${ROW} FROM tasks WHERE idempotency_key = $1`,
  byId: `SELECT ${ROW} FROM tasks WHERE id = $1`,
  byIdForUpdate: `SELECT ${ROW} FROM tasks WHERE id = $1 FOR UPDATE`,
  outcomeById: `SELECT ${outcomeColumns('(errors -> -1)::text')} FROM tasks WHERE id = $1`,
  claim: `
    UPDATE tasks SET state = ${transitions.claim.to}, attempt = attempt + 1, lease_owner = $1, worker_id = $2,
      lease_expires_at = $3, started_at = $4, updated_at = $4,
      deadline_at = CASE WHEN execution_timeout_ms IS NULL THEN NULL ELSE $4 + execution_timeout_ms END,
      queue_deadline_at = NULL, progress_percent = 0, progress_message = ''
    WHERE seq IN (
      SELECT seq FROM tasks t WHERE ${READY} AND type = ANY($5) AND ${KEY_HAS_ROOM}
        AND NOT EXISTS (SELECT 1 FROM queue_pauses p WHERE p.queue = t.queue)
      ORDER BY priority DESC, seq LIMIT $6 FOR UPDATE SKIP LOCKED)
    RETURNING id, type, attempt, input_type, input, queue, max_attempts, deadline_at, metadata, run_at, started_at`,
  complete: `
    UPDATE tasks t SET state = ${transitions.complete.to}, output_type = u.type_url, output = u.value, finished_at = $5,
      updated_at = $5, expires_at = ${retentionExpirySql('$5', S.TASK_STATE_SUCCEEDED)}, lease_expires_at = NULL, deadline_at = NULL, progress_percent = 100
    FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[]) AS u(id, attempt, type_url, value)
    WHERE t.id = u.id AND t.attempt = u.attempt AND t.${stateIn(transitions.complete.from)}
    RETURNING t.id, t.attempt, t.type, t.queue, t.lease_owner, t.started_at, t.concurrency_key`,
  running: `
    SELECT type, queue, failures, max_attempts, backoff, retain_failed_ms, lease_owner, started_at, concurrency_key FROM tasks
    WHERE id = $1 AND attempt = $2 AND state = ${S.TASK_STATE_RUNNING} FOR UPDATE`,
  /** A failed attempt, as `decideFail` decided: $3 the state, $6 the retry's run time, $7 finished at, $8 expires at. */
  fail: `
    UPDATE tasks SET state = $3::smallint, failures = failures + 1, errors = errors || $4::jsonb, updated_at = $5,
      run_at = COALESCE($6::bigint, run_at), finished_at = COALESCE($7::bigint, finished_at), expires_at = $8::bigint,
      lease_expires_at = NULL, deadline_at = NULL
    WHERE id = $1 AND attempt = $2 AND ${stateIn(transitions.fail.from)}`,
  release: `
    UPDATE tasks SET state = ${transitions.release.to}, updated_at = $3, lease_expires_at = NULL, deadline_at = NULL,
      progress_percent = 0, progress_message = '', paused = ${PAUSED('tasks.queue')}
    WHERE id = $1 AND attempt = $2 AND ${stateIn(transitions.release.from)}
    RETURNING type, queue, lease_owner, started_at, concurrency_key`,
  progress: `
    UPDATE tasks SET progress_percent = $3, progress_message = $4
    WHERE id = $1 AND attempt = $2 AND state = ${S.TASK_STATE_RUNNING} RETURNING type, queue`,
  renew: `
    UPDATE tasks t SET lease_expires_at = $3
    FROM unnest($1::text[], $2::int[]) AS u(id, attempt)
    WHERE t.id = u.id AND t.attempt = u.attempt AND t.lease_owner = $4 AND t.state = ${S.TASK_STATE_RUNNING}`,
  extendLeases: `
    UPDATE tasks SET lease_expires_at = $1 WHERE state = ${S.TASK_STATE_RUNNING} AND lease_expires_at < $1`,
  resume: `
    UPDATE tasks SET lease_owner = $1, lease_expires_at = $3
    WHERE id = $4 AND attempt = $5 AND worker_id = $2 AND state = ${S.TASK_STATE_RUNNING}
    RETURNING type`,
  cancel: `
    UPDATE tasks SET state = ${transitions.cancel.to}, cancel_reason = $2, finished_at = $3, updated_at = $3,
      expires_at = ${retentionExpirySql('$3', S.TASK_STATE_CANCELLED)}, lease_expires_at = NULL, deadline_at = NULL
    WHERE id = $1 AND ${stateIn(transitions.cancel.from)}`,
  revive: `
    UPDATE tasks SET state = ${transitions.revive.to}, failures = 0, run_at = $2, updated_at = $2, finished_at = NULL, expires_at = NULL,
      cancel_reason = NULL, output_type = NULL, output = NULL, progress_percent = 0, progress_message = '',
      paused = ${PAUSED('tasks.queue')}
    WHERE id = $1 AND ${stateIn(transitions.revive.from)}`,
  promote: `
    UPDATE tasks SET state = ${transitions.promote.to}, updated_at = $1, paused = ${PAUSED('tasks.queue')}
    WHERE seq IN (SELECT seq FROM tasks WHERE ${stateIn(transitions.promote.from)} AND run_at <= $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, type, queue, attempt`,
  expire: `
    UPDATE tasks SET state = ${transitions.expire.to}, finished_at = $1, updated_at = $1, errors = errors || $2::jsonb,
      expires_at = ${retentionExpirySql('$1', S.TASK_STATE_FAILED)}
    WHERE seq IN (
      SELECT seq FROM tasks WHERE ${stateIn(transitions.expire.from)} AND queue_deadline_at <= $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, type, queue, attempt`,
  deadlinePassed: `
    SELECT id, attempt, lease_owner FROM tasks
    WHERE state = ${S.TASK_STATE_RUNNING} AND deadline_at IS NOT NULL AND deadline_at <= $1 LIMIT $2`,
  leaseExpired: `
    SELECT id, attempt, lease_owner FROM tasks WHERE state = ${S.TASK_STATE_RUNNING} AND lease_expires_at <= $1 LIMIT $2`,
  /**
   * Replicas may clean at once: SKIP LOCKED gives each its own rows, and a row
   * another transaction is changing (a revive) is left for the next round.
   */
  deleteExpired: `
    DELETE FROM tasks WHERE seq IN (
      SELECT seq FROM tasks WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at LIMIT $2
      FOR UPDATE SKIP LOCKED)
    RETURNING queue, state`,
  countByState: `SELECT state, COUNT(*)::bigint AS n FROM tasks GROUP BY state`,
  oldestQueued: OLDEST_QUEUED_SQL,
  statsAll: `SELECT queue, state, COUNT(*)::bigint AS n FROM tasks GROUP BY queue, state ORDER BY queue`,
  statsQueue: `SELECT queue, state, COUNT(*)::bigint AS n FROM tasks WHERE queue = $1 GROUP BY queue, state`,
  delete: `DELETE FROM tasks WHERE id = $1 AND ${stateIn(transitions.delete.from)}`,
  /** $1 queue, $2 states (each one `transitions.delete` leaves), $3 finished before (or null), $4 limit. */
  purge: `
    DELETE FROM tasks WHERE seq IN (
      SELECT seq FROM tasks WHERE queue = $1 AND state = ANY($2::smallint[]) AND ($3::bigint IS NULL OR finished_at < $3)
      LIMIT $4 FOR UPDATE SKIP LOCKED)
    RETURNING queue, state`,
  /** One array per column ($1–$11), $12 expires at. */
  putWorkers: `
    INSERT INTO workers (session_id, replica, worker_id, task_types, slots, running, labels, version, peer, connected_at,
      last_seen_at, expires_at)
    SELECT u.*, $12::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[],
      $8::text[], $9::text[], $10::bigint[], $11::bigint[]) AS u
    ON CONFLICT (session_id) DO UPDATE SET running = EXCLUDED.running, last_seen_at = EXCLUDED.last_seen_at,
      expires_at = EXCLUDED.expires_at`,
  removeWorkers: `DELETE FROM workers WHERE session_id = ANY($1::text[])`,
  expireWorkers: `DELETE FROM workers WHERE expires_at <= $1`,
  listWorkers: `SELECT * FROM workers WHERE expires_at > $1 ORDER BY replica, connected_at, session_id`,
} as const;

