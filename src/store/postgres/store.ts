import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { failedPrecondition, notFound } from '../../errors.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import {
  attemptEnded,
  claimed,
  initialColumns,
  insertedRecord,
  jsonOrNull,
  metadataJson,
  outcomeColumns,
  overdueAttempt,
  toRecord,
  toTaskEnd,
  type ClaimedRow,
  type EndedAttemptRow,
  type OutcomeRow,
  type OverdueRow,
  type TaskRow,
} from '../rows.js';
import { stateIn, stateName, transitions } from '../transitions.js';
import type {
  ClaimRequest,
  Fenced,
  InsertResult,
  ListFilter,
  QueueCounts,
  Store,
  TaskErrorRecord,
  TaskEnd,
  TaskEvent,
  TaskListener,
  TaskRecord,
} from '../types.js';
import { exponentialBackoff } from '../backoff.js';
import { createGroupCommit } from './group-commit.js';
import { migrate } from './migrations.js';

export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  readonly connectionString: string;
  /** Schema for the tables (created if missing). Default "public". */
  readonly schema?: string;
  /** Pool size. Default 8. */
  readonly maxConnections?: number;
}

const S = TaskState;
const CHANNEL = 'taskwire_events';
/** NOTIFY payloads must stay under 8,000 bytes; outputs larger than this are read back by the listener. */
const MAX_INLINE_OUTPUT = 2_000;
/** Columns in the shape of TaskRow: errors as text, BIGINTs parsed as numbers (see `types`). */
const ROW = 'seq, id, type, queue, state, priority, input_type, input, output_type, output, labels, trace_context, attempt, failures, max_attempts, backoff, errors::text AS errors, execution_timeout_ms, queue_timeout_ms, idempotency_key, run_at, created_at, updated_at, started_at, finished_at, worker_id, lease_owner, lease_expires_at, deadline_at, progress_percent, progress_message, cancel_reason';

/** BIGINT columns hold epoch milliseconds and counters: numbers, not strings. */
const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** An event as it travels in a NOTIFY payload. */
interface WireEvent extends Omit<TaskEvent, 'output'> {
  readonly output?: { readonly typeUrl: string; readonly value: string };
  /** The output was too large to inline: read it back. */
  readonly outputElided?: true;
}

/**
 * The networked store, for several server replicas on one PostgreSQL.
 * Claims take rows with `FOR UPDATE SKIP LOCKED`, so replicas claiming at
 * once never wait on or double-claim each other's rows; every fenced write
 * re-checks (id, attempt, state) under the row lock. Writes issued in one
 * turn of the event loop share one transaction, as in the SQLite store. Each
 * commit also NOTIFYs its events, so every replica's broker sees every
 * change: a task queued on one replica wakes workers connected to another,
 * and a result reaches watchers anywhere.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const schema = options.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`schema "${schema}" must be a plain lower-case identifier`);
  const replica = randomUUID();
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 8,
    options: `-c search_path=${schema}`,
    types,
  });
  const setup = await pool.connect();
  try {
    await migrate(setup, schema);
  } finally {
    setup.release();
  }

  const listeners = new Set<TaskListener>();
  const emit = (events: readonly TaskEvent[]) => {
    if (events.length > 0) for (const listener of listeners) listener(events);
  };

  // Other replicas' committed events.
  const listenClient = new pg.Client({ connectionString: options.connectionString, types });
  await listenClient.connect();
  await listenClient.query(`LISTEN ${CHANNEL}_${schema}`);
  listenClient.on('notification', (message) => {
    if (message.payload === undefined) return;
    const { r, e } = JSON.parse(message.payload) as { r: string; e: WireEvent[] };
    if (r === replica) return;
    void fromWire(e).then(emit);
  });

  async function fromWire(events: readonly WireEvent[]): Promise<TaskEvent[]> {
    return Promise.all(
      events.map(async ({ output, outputElided, ...event }) => {
        if (output !== undefined) return { ...event, output: { typeUrl: output.typeUrl, value: Buffer.from(output.value, 'base64') } };
        if (outputElided) {
          const ended = await outcome(event.id);
          return typeof ended === 'object' && ended.output !== undefined ? { ...event, output: ended.output } : event;
        }
        return event;
      }),
    );
  }

  function toWire(event: TaskEvent): WireEvent {
    const { output, ...rest } = event;
    if (output === undefined) return rest;
    if (output.value.byteLength > MAX_INLINE_OUTPUT) return { ...rest, outputElided: true };
    return { ...rest, output: { typeUrl: output.typeUrl, value: Buffer.from(output.value).toString('base64') } };
  }

  /** NOTIFY the batch's events, in payloads that fit. */
  async function notify(client: pg.PoolClient, events: readonly TaskEvent[]): Promise<void> {
    let chunk: WireEvent[] = [];
    let size = 0;
    const send = async () => {
      if (chunk.length === 0) return;
      await client.query('SELECT pg_notify($1, $2)', [`${CHANNEL}_${schema}`, JSON.stringify({ r: replica, e: chunk })]);
      chunk = [];
      size = 0;
    };
    for (const event of events) {
      const wire = toWire(event);
      const length = JSON.stringify(wire).length;
      if (size + length > 7_000) await send();
      chunk.push(wire);
      size += length;
    }
    await send();
  }

  const commits = createGroupCommit({ pool, beforeCommit: notify, publish: emit });
  const write = commits.write;

  // ---- reads ----

  async function get(id: string): Promise<TaskRecord | undefined> {
    const { rows } = await pool.query<TaskRow>(`SELECT ${ROW} FROM tasks WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }

  async function outcome(id: string): Promise<TaskEnd | 'live' | undefined> {
    const { rows } = await pool.query<OutcomeRow>(`SELECT ${outcomeColumns('(errors -> -1)::text')} FROM tasks WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : toTaskEnd(id, rows[0]);
  }

  async function mustGet(client: pg.PoolClient, id: string, lock = false): Promise<TaskRecord> {
    const { rows } = await client.query<TaskRow>(`SELECT ${ROW} FROM tasks WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    if (rows[0] === undefined) throw notFound(`no task with id "${id}"`);
    return toRecord(rows[0]);
  }

  const errorRecord = (
    item: { attempt: number; message: string; code: number; retryable: boolean; workerId?: string },
    now: number,
  ): TaskErrorRecord => ({
    attempt: item.attempt,
    message: item.message,
    code: item.code,
    retryable: item.retryable,
    ...(item.workerId === undefined ? {} : { workerId: item.workerId }),
    time: now,
  });

  return {
    insert(tasks) {
      return write(async (client, events) => {
        const now = Date.now();
        const rows = tasks.map((task) => ({ task, columns: initialColumns(task, now) }));
        const column = <T>(pick: (row: (typeof rows)[number]) => T) => rows.map(pick);
        // One statement for the whole batch: arrays, one per column, unnested into rows.
        const { rows: inserted } = await client.query<{ id: string }>(
          `INSERT INTO tasks (id, type, queue, state, priority, input_type, input, labels, trace_context, metadata,
             max_attempts, backoff, execution_timeout_ms, queue_timeout_ms, queue_deadline_at, idempotency_key, run_at,
             attempt, lease_owner, worker_id, lease_expires_at, started_at, deadline_at, created_at, updated_at)
           SELECT u.*, $24::bigint, $24::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::int[],
             $6::text[], $7::bytea[], $8::text[], $9::text[], $10::text[], $11::int[], $12::text[], $13::bigint[],
             $14::bigint[], $15::bigint[], $16::text[], $17::bigint[], $18::int[], $19::text[], $20::text[],
             $21::bigint[], $22::bigint[], $23::bigint[]) AS u
           ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
           RETURNING id`,
          [
            column((r) => r.task.id),
            column((r) => r.task.type),
            column((r) => r.task.options.queue),
            column((r) => r.columns.state),
            column((r) => r.task.options.priority),
            column((r) => r.task.input.typeUrl),
            column((r) => Buffer.from(r.task.input.value)),
            column((r) => jsonOrNull(r.task.options.labels)),
            column((r) => jsonOrNull(r.task.options.traceContext)),
            column((r) => metadataJson(r.task.options)),
            column((r) => r.task.options.maxAttempts),
            column((r) => JSON.stringify(r.task.options.backoff)),
            column((r) => r.task.options.executionTimeoutMs ?? null),
            column((r) => r.task.options.queueTimeoutMs ?? null),
            column((r) => r.columns.queueDeadlineAt),
            column((r) => r.task.options.idempotencyKey ?? null),
            column((r) => Math.max(r.task.runAt, 0)),
            column((r) => r.columns.attempt),
            column((r) => r.columns.leaseOwner),
            column((r) => r.columns.workerId),
            column((r) => r.columns.leaseExpiresAt),
            column((r) => r.columns.startedAt),
            column((r) => r.columns.deadlineAt),
            now,
          ],
        );
        const created = new Set(inserted.map((row) => row.id));
        const results: InsertResult[] = [];
        for (const { task, columns } of rows) {
          if (!created.has(task.id)) {
            // The idempotency key was taken: by an earlier task, or by one earlier in this batch.
            const existing = await client.query<TaskRow>(`SELECT ${ROW} FROM tasks WHERE idempotency_key = $1`, [task.options.idempotencyKey]);
            results.push({ task: toRecord(existing.rows[0]!), existing: true });
            continue;
          }
          events.push({ id: task.id, type: task.type, state: columns.state, attempt: columns.attempt, previous: S.TASK_STATE_UNSPECIFIED });
          results.push({ existing: false, task: insertedRecord(task, columns, now) });
        }
        return results;
      });
    },

    claim(request: ClaimRequest) {
      if (request.limit <= 0 || request.types.length === 0) return Promise.resolve([]);
      return write(async (client, events) => {
        const { rows } = await client.query<ClaimedRow>(
          `UPDATE tasks SET state = ${transitions.claim.to}, attempt = attempt + 1, lease_owner = $1, worker_id = $2,
             lease_expires_at = $3, started_at = $4, updated_at = $4,
             deadline_at = CASE WHEN execution_timeout_ms IS NULL THEN NULL ELSE $4 + execution_timeout_ms END,
             queue_deadline_at = NULL, progress_percent = 0, progress_message = ''
           WHERE seq IN (
             SELECT seq FROM tasks WHERE ${stateIn(transitions.claim.from)} AND type = ANY($5)
             ORDER BY priority DESC, seq LIMIT $6 FOR UPDATE SKIP LOCKED)
           RETURNING id, type, attempt, input_type, input, queue, max_attempts, deadline_at, metadata`,
          [request.owner, request.workerId, request.now + request.leaseMs, request.now, request.types, request.limit],
        );
        return rows.map((row) => claimed(row, events));
      });
    },

    complete(items, now) {
      if (items.length === 0) return Promise.resolve([]);
      return write(async (client, events) => {
        const { rows } = await client.query<{ id: string; attempt: number; type: string; lease_owner: string | null }>(
          `UPDATE tasks t SET state = ${transitions.complete.to}, output_type = u.type_url, output = u.value, finished_at = $5,
             updated_at = $5, lease_expires_at = NULL, deadline_at = NULL, progress_percent = 100
           FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[]) AS u(id, attempt, type_url, value)
           WHERE t.id = u.id AND t.attempt = u.attempt AND t.${stateIn(transitions.complete.from)}
           RETURNING t.id, t.attempt, t.type, t.lease_owner`,
          [items.map((i) => i.id), items.map((i) => i.attempt), items.map((i) => i.output.typeUrl), items.map((i) => Buffer.from(i.output.value)), now],
        );
        const applied = new Map(rows.map((row) => [`${row.id}#${row.attempt}`, row]));
        return items.map((item): Fenced => {
          const row = applied.get(`${item.id}#${item.attempt}`);
          if (row === undefined) return { applied: false };
          applied.delete(`${item.id}#${item.attempt}`);
          events.push(attemptEnded(item, row, S.TASK_STATE_SUCCEEDED, { output: item.output }));
          return { applied: true, state: S.TASK_STATE_SUCCEEDED };
        });
      });
    },

    fail(items, now) {
      return write(async (client, events) => {
        const results: Fenced[] = [];
        for (const item of items) {
          const { rows } = await client.query<{ type: string; failures: number; max_attempts: number; backoff: string; lease_owner: string | null }>(
            `SELECT type, failures, max_attempts, backoff, lease_owner FROM tasks
             WHERE id = $1 AND attempt = $2 AND state = ${S.TASK_STATE_RUNNING} FOR UPDATE`,
            [item.id, item.attempt],
          );
          const row = rows[0];
          if (row === undefined) {
            results.push({ applied: false });
            continue;
          }
          const error = errorRecord(item, now);
          const failures = row.failures + 1;
          const dead = !item.retryable || failures >= row.max_attempts;
          const state = dead ? transitions.fail.to : transitions.retry.to;
          await client.query(
            `UPDATE tasks SET state = $3::smallint, failures = failures + 1, errors = errors || $4::jsonb, updated_at = $5,
               run_at = CASE WHEN $6::bigint IS NULL THEN run_at ELSE $6 END,
               finished_at = CASE WHEN $3::smallint = ${transitions.fail.to} THEN $5 ELSE finished_at END,
               lease_expires_at = NULL, deadline_at = NULL
             WHERE id = $1 AND attempt = $2`,
            [item.id, item.attempt, state, JSON.stringify([error]), now, dead ? null : now + exponentialBackoff(failures, JSON.parse(row.backoff))],
          );
          events.push(attemptEnded(item, row, state, { error }));
          results.push({ applied: true, state });
        }
        return results;
      });
    },

    release(items, now) {
      return write(async (client, events) => {
        const results: Fenced[] = [];
        for (const item of items) {
          const { rows } = await client.query<EndedAttemptRow>(
            `UPDATE tasks SET state = ${transitions.release.to}, updated_at = $3, lease_expires_at = NULL, deadline_at = NULL,
               progress_percent = 0, progress_message = ''
             WHERE id = $1 AND attempt = $2 AND ${stateIn(transitions.release.from)}
             RETURNING type, lease_owner`,
            [item.id, item.attempt, now],
          );
          const row = rows[0];
          if (row === undefined) {
            results.push({ applied: false });
            continue;
          }
          events.push(attemptEnded(item, row, transitions.release.to));
          results.push({ applied: true, state: transitions.release.to });
        }
        return results;
      });
    },

    progress(items) {
      return write(async (client, events) => {
        for (const item of items) {
          const { rows } = await client.query<{ type: string }>(
            `UPDATE tasks SET progress_percent = $3, progress_message = $4
             WHERE id = $1 AND attempt = $2 AND state = ${S.TASK_STATE_RUNNING} RETURNING type`,
            [item.id, item.attempt, item.percent, item.message],
          );
          if (rows[0] === undefined) continue;
          events.push({
            id: item.id,
            type: rows[0].type,
            state: S.TASK_STATE_RUNNING,
            attempt: item.attempt,
            previous: S.TASK_STATE_RUNNING,
            progress: { percent: item.percent, message: item.message },
          });
        }
      });
    },

    renewLeases(owner, leases, expiresAt) {
      if (leases.length === 0) return Promise.resolve(0);
      return write(async (client) => {
        const result = await client.query(
          `UPDATE tasks t SET lease_expires_at = $3
           FROM unnest($1::text[], $2::int[]) AS u(id, attempt)
           WHERE t.id = u.id AND t.attempt = u.attempt AND t.lease_owner = $4 AND t.state = ${S.TASK_STATE_RUNNING}`,
          [leases.map((l) => l.id), leases.map((l) => l.attempt), expiresAt, owner],
        );
        return result.rowCount ?? 0;
      });
    },

    resume(owner, workerId, refs, expiresAt) {
      return write(async (client) => {
        const kept = [];
        for (const ref of refs) {
          const result = await client.query(
            `UPDATE tasks SET lease_owner = $1, worker_id = $2, lease_expires_at = $3
             WHERE id = $4 AND attempt = $5 AND state = ${S.TASK_STATE_RUNNING}`,
            [owner, workerId, expiresAt, ref.id, ref.attempt],
          );
          if (result.rowCount === 1) kept.push(ref);
        }
        return kept;
      });
    },

    cancel(id, reason, now) {
      return write(async (client, events) => {
        const before = await mustGet(client, id, true);
        const result = await client.query(
          `UPDATE tasks SET state = ${transitions.cancel.to}, cancel_reason = $2, finished_at = $3, updated_at = $3,
             lease_expires_at = NULL, deadline_at = NULL
           WHERE id = $1 AND ${stateIn(transitions.cancel.from)}`,
          [id, reason, now],
        );
        if (result.rowCount === 0) {
          throw failedPrecondition(`task ${id} is ${stateName(before.state)}; only SCHEDULED, QUEUED or RUNNING tasks can be cancelled`);
        }
        events.push({
          id,
          type: before.type,
          state: transitions.cancel.to,
          attempt: before.attempt,
          previous: before.state,
          ...(before.state === S.TASK_STATE_RUNNING && before.leaseOwner !== undefined ? { owner: before.leaseOwner } : {}),
        });
        return mustGet(client, id);
      });
    },

    revive(id, now) {
      return write(async (client, events) => {
        const before = await mustGet(client, id, true);
        const result = await client.query(
          `UPDATE tasks SET state = ${transitions.revive.to}, failures = 0, run_at = $2, updated_at = $2, finished_at = NULL,
             cancel_reason = NULL, output_type = NULL, output = NULL, progress_percent = 0, progress_message = ''
           WHERE id = $1 AND ${stateIn(transitions.revive.from)}`,
          [id, now],
        );
        if (result.rowCount === 0) {
          throw failedPrecondition(`task ${id} is ${stateName(before.state)}; only FAILED or CANCELLED tasks can be retried`);
        }
        events.push({ id, type: before.type, state: transitions.revive.to, attempt: before.attempt, previous: before.state });
        return mustGet(client, id);
      });
    },

    get,
    outcome,

    async list(filter: ListFilter, pageSize, cursor) {
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, value: unknown) => {
        params.push(value);
        where.push(sql.replace('?', `$${params.length}`));
      };
      if (filter.queue !== undefined) add('queue = ?', filter.queue);
      if (filter.state !== undefined) add('state = ?', filter.state);
      if (filter.type !== undefined) add('type = ?', filter.type);
      if (after !== undefined) add('seq < ?', after);
      params.push(pageSize + 1);
      const { rows } = await pool.query<TaskRow>(
        `SELECT ${ROW} FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.length}`,
        params,
      );
      const page = rows.slice(0, pageSize);
      return {
        tasks: page.map(toRecord),
        ...(rows.length > pageSize ? { next: encodeCursor(page[page.length - 1]!.seq) } : {}),
      };
    },

    async stats(queue) {
      const { rows } = await pool.query<{ queue: string; state: TaskState; n: number }>(
        `SELECT queue, state, COUNT(*)::bigint AS n FROM tasks ${queue === undefined ? '' : 'WHERE queue = $1'}
         GROUP BY queue, state ORDER BY queue`,
        queue === undefined ? [] : [queue],
      );
      const byQueue = new Map<string, Partial<Record<TaskState, number>>>();
      for (const row of rows) {
        const counts = byQueue.get(row.queue) ?? {};
        counts[row.state] = row.n;
        byQueue.set(row.queue, counts);
      }
      return [...byQueue].map(([name, counts]): QueueCounts => ({ queue: name, counts }));
    },

    promoteDue(now) {
      return write(async (client, events) => {
        const { rows } = await client.query<{ id: string; type: string; attempt: number }>(
          `UPDATE tasks SET state = ${transitions.promote.to}, updated_at = $1
           WHERE seq IN (SELECT seq FROM tasks WHERE ${stateIn(transitions.promote.from)} AND run_at <= $1 FOR UPDATE SKIP LOCKED)
           RETURNING id, type, attempt`,
          [now],
        );
        for (const row of rows) events.push({ ...row, state: transitions.promote.to, previous: S.TASK_STATE_SCHEDULED });
        return rows.length;
      });
    },

    expireQueued(now) {
      return write(async (client, events) => {
        const error = (attempt: number) =>
          errorRecord({ attempt, message: 'queue timeout: the task did not start in time', code: 4, retryable: false }, now);
        const { rows } = await client.query<{ id: string; type: string; attempt: number }>(
          `UPDATE tasks SET state = ${transitions.expire.to}, finished_at = $1, updated_at = $1, errors = errors || $2::jsonb
           WHERE seq IN (
             SELECT seq FROM tasks WHERE ${stateIn(transitions.expire.from)} AND queue_deadline_at <= $1 FOR UPDATE SKIP LOCKED)
           RETURNING id, type, attempt`,
          [now, JSON.stringify([error(0)])],
        );
        for (const row of rows) {
          events.push({ ...row, state: transitions.expire.to, previous: S.TASK_STATE_QUEUED, error: error(row.attempt) });
        }
        return rows.length;
      });
    },

    async overdue(now, limit) {
      const deadlines = await pool.query<OverdueRow>(
        `SELECT id, attempt, lease_owner FROM tasks WHERE state = ${S.TASK_STATE_RUNNING} AND deadline_at IS NOT NULL AND deadline_at <= $1 LIMIT $2`,
        [now, limit],
      );
      const leases = await pool.query<OverdueRow>(
        `SELECT id, attempt, lease_owner FROM tasks WHERE state = ${S.TASK_STATE_RUNNING} AND lease_expires_at <= $1 LIMIT $2`,
        [now, limit],
      );
      return [...deadlines.rows.map(overdueAttempt('deadline')), ...leases.rows.map(overdueAttempt('lease'))];
    },

    async countByState() {
      const { rows } = await pool.query<{ state: TaskState; n: number }>('SELECT state, COUNT(*)::bigint AS n FROM tasks GROUP BY state');
      const counts: Partial<Record<TaskState, number>> = {};
      for (const row of rows) counts[row.state] = row.n;
      return counts;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      if (!(await commits.close())) return;
      await listenClient.end();
      await pool.end();
    },
  };
}
