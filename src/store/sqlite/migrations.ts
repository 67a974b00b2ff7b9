import type { Database } from 'better-sqlite3';

/**
 * Schema versions, applied in order; `PRAGMA user_version` records the last
 * one applied. Never edit a released migration: add the next one.
 *
 * States are stored as TaskState numbers: 1 SCHEDULED, 2 QUEUED, 3 RUNNING,
 * 4 SUCCEEDED, 5 FAILED, 6 CANCELLED.
 *
 * Every index is paid for on every state change, so there are only those
 * the hot path needs: the ready queue (without paused queues' tasks),
 * timers, leases, and idempotency keys (partial indexes, so each holds only
 * the rows in its states). Listing and
 * statistics scan the table, newest first; they are administrative calls.
 */
const migrations: readonly string[] = [
  `
  CREATE TABLE tasks (
    seq                  INTEGER PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    type                 TEXT NOT NULL,
    queue                TEXT NOT NULL,
    state                INTEGER NOT NULL,
    priority             INTEGER NOT NULL,
    input_type           TEXT NOT NULL,
    input                BLOB NOT NULL,
    output_type          TEXT,
    output               BLOB,
    labels               TEXT,
    trace_context        TEXT,
    metadata             TEXT,
    attempt              INTEGER NOT NULL DEFAULT 0,
    failures             INTEGER NOT NULL DEFAULT 0,
    max_attempts         INTEGER NOT NULL,
    backoff              TEXT NOT NULL,
    errors               TEXT NOT NULL DEFAULT '[]',
    execution_timeout_ms INTEGER,
    queue_timeout_ms     INTEGER,
    queue_deadline_at    INTEGER,
    idempotency_key      TEXT,
    run_at               INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    started_at           INTEGER,
    finished_at          INTEGER,
    worker_id            TEXT,
    lease_owner          TEXT,
    lease_expires_at     INTEGER,
    deadline_at          INTEGER,
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
  ALTER TABLE tasks ADD COLUMN retain_succeeded_ms INTEGER;
  ALTER TABLE tasks ADD COLUMN retain_failed_ms INTEGER;
  ALTER TABLE tasks ADD COLUMN retain_cancelled_ms INTEGER;
  ALTER TABLE tasks ADD COLUMN expires_at INTEGER;
  CREATE INDEX tasks_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
  `,
  // Schedules and concurrency keys (issue 24). The spec is the broker's JSON; the store fires by
  // (id, version) and never reads it. Paused schedules have no next_fire_at.
  `
  CREATE TABLE schedules (
    id              TEXT PRIMARY KEY,
    spec            TEXT NOT NULL,
    input_type      TEXT NOT NULL,
    input           BLOB NOT NULL,
    paused          INTEGER NOT NULL DEFAULT 0,
    next_fire_at    INTEGER,
    last_fire_at    INTEGER,
    last_task_id    TEXT,
    fired           INTEGER NOT NULL DEFAULT 0,
    missed_skipped  INTEGER NOT NULL DEFAULT 0,
    overlap_skipped INTEGER NOT NULL DEFAULT 0,
    last_missed     TEXT NOT NULL DEFAULT '',
    last_missed_at  INTEGER,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
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
  // Paused queues (PauseQueue); claims skip their tasks.
  `
  CREATE TABLE queue_pauses (
    queue     TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // Issue 16: a paused queue's QUEUED tasks carry `paused` (decisions.ts) and leave the ready
  // index, so a claim no longer walks past a paused backlog; tasks_paused holds them for the
  // resume. The tasks of queues paused before this version are flagged here.
  `
  ALTER TABLE tasks ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
  UPDATE tasks SET paused = 1 WHERE state = 2 AND queue IN (SELECT queue FROM queue_pauses);
  DROP INDEX tasks_ready;
  CREATE INDEX tasks_ready ON tasks (type, priority DESC, seq) WHERE state = 2 AND NOT paused;
  CREATE INDEX tasks_paused ON tasks (queue, seq) WHERE state = 2 AND paused;
  `,
];

export const SCHEMA_VERSION = migrations.length;

export function migrate(db: Database): void {
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `the database has schema version ${current}, newer than this taskwire's ${SCHEMA_VERSION}: upgrade taskwire`,
      );
    }
    for (let version = current; version < SCHEMA_VERSION; version++) db.exec(migrations[version]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
