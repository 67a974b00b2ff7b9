import type { PoolClient } from 'pg';

/**
 * Schema versions, applied in order at start; `taskwire_schema` records the
 * last one. Replicas that start together serialise on an advisory lock, so
 * each migration runs once. Never edit a released migration: add the next.
 *
 * The same table as the SQLite store (states as TaskState numbers, times in
 * epoch milliseconds), with only the indexes the hot path needs.
 */
const migrations: readonly string[] = [
  `
  CREATE TABLE tasks (
    seq                  BIGSERIAL PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    type                 TEXT NOT NULL,
    queue                TEXT NOT NULL,
    state                SMALLINT NOT NULL,
    priority             INTEGER NOT NULL,
    input_type           TEXT NOT NULL,
    input                BYTEA NOT NULL,
    output_type          TEXT,
    output               BYTEA,
    labels               TEXT,
    trace_context        TEXT,
    metadata             TEXT,
    attempt              INTEGER NOT NULL DEFAULT 0,
    failures             INTEGER NOT NULL DEFAULT 0,
    max_attempts         INTEGER NOT NULL,
    backoff              TEXT NOT NULL,
    errors               JSONB NOT NULL DEFAULT '[]',
    execution_timeout_ms BIGINT,
    queue_timeout_ms     BIGINT,
    queue_deadline_at    BIGINT,
    idempotency_key      TEXT,
    run_at               BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    started_at           BIGINT,
    finished_at          BIGINT,
    worker_id            TEXT,
    lease_owner          TEXT,
    lease_expires_at     BIGINT,
    deadline_at          BIGINT,
    progress_percent     REAL NOT NULL DEFAULT 0,
    progress_message     TEXT NOT NULL DEFAULT '',
    cancel_reason        TEXT
  );
  CREATE INDEX tasks_ready ON tasks (type, priority DESC, seq) WHERE state = 2;
  CREATE INDEX tasks_scheduled ON tasks (run_at) WHERE state = 1;
  CREATE INDEX tasks_leases ON tasks (lease_expires_at) WHERE state = 3;
  CREATE INDEX tasks_deadline ON tasks (deadline_at) WHERE state = 3 AND deadline_at IS NOT NULL;
  CREATE INDEX tasks_queue_deadline ON tasks (queue_deadline_at) WHERE state IN (1, 2) AND queue_deadline_at IS NOT NULL;
  CREATE UNIQUE INDEX tasks_idempotency ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
  `,
  // Retention: each task carries how long it is kept after it ends (resolved at submit), and a
  // task that ended carries when the cleaner may delete it; the index holds only those.
  `
  ALTER TABLE tasks ADD COLUMN retain_succeeded_ms BIGINT;
  ALTER TABLE tasks ADD COLUMN retain_failed_ms BIGINT;
  ALTER TABLE tasks ADD COLUMN retain_cancelled_ms BIGINT;
  ALTER TABLE tasks ADD COLUMN expires_at BIGINT;
  CREATE INDEX tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
  `,
  // Schedules and concurrency keys (issue 24). The spec is the broker's JSON; the store fires by
  // (id, version) and never reads it. Paused schedules have no next_fire_at.
  `
  CREATE TABLE schedules (
    id              TEXT PRIMARY KEY,
    spec            TEXT NOT NULL,
    input_type      TEXT NOT NULL,
    input           BYTEA NOT NULL,
    paused          BOOLEAN NOT NULL DEFAULT FALSE,
    next_fire_at    BIGINT,
    last_fire_at    BIGINT,
    last_task_id    TEXT,
    fired           BIGINT NOT NULL DEFAULT 0,
    missed_skipped  BIGINT NOT NULL DEFAULT 0,
    overlap_skipped BIGINT NOT NULL DEFAULT 0,
    last_missed     TEXT NOT NULL DEFAULT '',
    last_missed_at  BIGINT,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
  );
  CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
  -- Concurrency keys (issue 24): the claim counts a key's live tasks older than each candidate.
  ALTER TABLE tasks ADD COLUMN concurrency_key TEXT;
  ALTER TABLE tasks ADD COLUMN concurrency_limit INTEGER;
  CREATE INDEX tasks_keys ON tasks (concurrency_key, seq) WHERE concurrency_key IS NOT NULL AND state IN (1, 2, 3);
  CREATE INDEX tasks_keys_running ON tasks (concurrency_key, seq) WHERE concurrency_key IS NOT NULL AND state = 3;
  `,
  // The oldest waiting task per queue (GetQueueStats, the metrics' oldest age) in a few index
  // steps per queue: without it that answer read every QUEUED row, 0.6 s with a million waiting.
  `
  CREATE INDEX tasks_queued_due ON tasks (queue, run_at) WHERE state = 2;
  `,
  // Paused queues (PauseQueue), which claims skip; every replica's worker
  // sessions (ListWorkers), each refreshed by its replica before it expires.
  `
  CREATE TABLE queue_pauses (
    queue     TEXT PRIMARY KEY,
    paused_at BIGINT NOT NULL
  );
  CREATE TABLE workers (
    session_id   TEXT PRIMARY KEY,
    replica      TEXT NOT NULL,
    worker_id    TEXT NOT NULL,
    task_types   TEXT NOT NULL,
    slots        INTEGER NOT NULL,
    running      INTEGER NOT NULL,
    labels       TEXT NOT NULL,
    version      TEXT NOT NULL,
    peer         TEXT NOT NULL,
    connected_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
  );
  `,
  // Issue 16: a paused queue's QUEUED tasks carry `paused` (decisions.ts) and leave the ready
  // index, so a claim no longer walks past a paused backlog; tasks_paused holds them for the
  // resume, and tasks_queued_due gains seq so a pause pages through a queue's tasks in order.
  // The tasks of queues paused before this version are flagged here.
  `
  ALTER TABLE tasks ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
  UPDATE tasks SET paused = TRUE WHERE state = 2 AND queue IN (SELECT queue FROM queue_pauses);
  DROP INDEX tasks_ready;
  CREATE INDEX tasks_ready ON tasks (type, priority DESC, seq) WHERE state = 2 AND NOT paused;
  CREATE INDEX tasks_paused ON tasks (queue, seq) WHERE state = 2 AND paused;
  DROP INDEX tasks_queued_due;
  CREATE INDEX tasks_queued_due ON tasks (queue, run_at, seq) WHERE state = 2;
  `,
];

/** An arbitrary constant: the advisory lock replicas take while migrating. */
const MIGRATION_LOCK = 7_242_001;

export async function migrate(client: PoolClient, schema: string): Promise<void> {
  await client.query('BEGIN');
  try {
    // Under the lock too: CREATE SCHEMA IF NOT EXISTS is not safe against itself run concurrently.
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query('CREATE TABLE IF NOT EXISTS taskwire_schema (version INTEGER NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM taskwire_schema');
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) {
      throw new Error(`the database has schema version ${current}, newer than this taskwire's ${migrations.length}: upgrade taskwire`);
    }
    for (let version = current; version < migrations.length; version++) await client.query(migrations[version]!);
    if (rows.length === 0) await client.query('INSERT INTO taskwire_schema (version) VALUES ($1)', [migrations.length]);
    else await client.query('UPDATE taskwire_schema SET version = $1', [migrations.length]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
