import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { notFound } from '../../errors.js';
import { decodeCursor, listPage } from '../cursor.js';
import { attemptEnded, claimed, deletions, type ClaimedRow, type EndedAttemptRow } from '../events.js';
import { initialColumns, insertedEvent, insertedRecord, jsonOrNull, metadataJson } from '../inserts.js';
import { overdueAttempt, queueCounts, toRecord, toTaskEnd, type OutcomeRow, type OverdueRow, type TaskRow } from '../rows.js';
import { decideCancel, decideFail, decideRevive, purgeStates, queueTimeoutError, refusal, type FailingRow } from '../decisions.js';
import { transitions } from '../transitions.js';
import type { ClaimRequest, Deletion, DeletionListener, Fenced, InsertResult, KeyCounts, ListFilter, NewTask, Store, TaskEnd, TaskEvent, TaskListener, TaskRecord } from '../types.js';
import { createGroupCommit } from './group-commit.js';
import { migrate } from './migrations.js';
import { listenForEvents } from './notifications.js';
import { pgTypes, ROW, SQL } from './statements.js';
import { listSql, matchingSql } from '../filter.js';
import { postgresSchedules } from './schedules.js';
import { postgresPauses } from './pauses.js';
import { waitingKeysSql } from '../keys.js';
import { sharedWorkers } from './workers.js';

export interface PostgresStoreOptions {
  /** postgres://user@host:port/database */
  readonly connectionString: string;
  /** Schema for the tables (created if missing). Default "public". */
  readonly schema?: string;
  /** Pool size. Default 8. */
  readonly maxConnections?: number;
}

const S = TaskState;

/**
 * The networked store, for several server replicas on one PostgreSQL.
 * Claims take rows with `FOR UPDATE SKIP LOCKED`, so replicas claiming at
 * once never wait on or double-claim each other's rows; every fenced write
 * re-checks (id, attempt, state) under the row lock. Writes issued in one
 * turn of the event loop share one transaction, as in the SQLite store. Each
 * commit also NOTIFYs its events (notifications.ts), so every replica's
 * broker sees every change.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const schema = options.schema ?? 'public';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`schema "${schema}" must be a plain lower-case identifier`);
  const replica = randomUUID();
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 8,
    options: `-c search_path=${schema}`,
    types: pgTypes,
  });
  const setup = await pool.connect();
  try {
    await migrate(setup, schema);
  } finally {
    setup.release();
  }

  const listeners = new Set<TaskListener>();
  const pauseListeners = new Set<(queue: string, paused: boolean) => void>();
  const pauseChanged = (queue: string, paused: boolean) => {
    for (const listener of pauseListeners) listener(queue, paused);
  };
  const deletionListeners = new Set<DeletionListener>();
  const emitDeletions = (deletions: readonly Deletion[]) => {
    if (deletions.length > 0) for (const listener of deletionListeners) listener(deletions);
  };
  const emit = (events: readonly TaskEvent[]) => {
    if (events.length > 0) for (const listener of listeners) listener(events);
  };
  const notifications = await listenForEvents({
    connectionString: options.connectionString,
    schema,
    replica,
    readOutput: async (id) => {
      const ended = await outcome(id);
      return typeof ended === 'object' ? ended.output : undefined;
    },
    deliver: emit,
    deliverPause: pauseChanged,
    deliverDeletions: emitDeletions,
  });
  const healthListeners = new Set<(failure: Error | undefined) => void>();
  const commitListeners = new Set<(seconds: number, writes: number) => void>();
  const commits = createGroupCommit({
    pool,
    beforeCommit: notifications.send,
    committed: (seconds, writes) => {
      for (const listener of commitListeners) listener(seconds, writes);
    },
    publish: emit,
    health: (failure) => {
      for (const listener of healthListeners) listener(failure);
    },
  });
  const write = commits.write;

  // ---- reads ----

  async function get(id: string): Promise<TaskRecord | undefined> {
    const { rows } = await pool.query<TaskRow>(SQL.byId, [id]);
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }

  async function outcome(id: string): Promise<TaskEnd | 'live' | undefined> {
    const { rows } = await pool.query<OutcomeRow>(SQL.outcomeById, [id]);
    return rows[0] === undefined ? undefined : toTaskEnd(id, rows[0]);
  }

  async function mustGet(client: pg.PoolClient, id: string, lock = false): Promise<TaskRecord> {
    const { rows } = await client.query<TaskRow>(lock ? SQL.byIdForUpdate : SQL.byId, [id]);
    if (rows[0] === undefined) throw notFound(`no task with id "${id}"`);
    return toRecord(rows[0]);
  }

  /** Inserts tasks inside the caller's transaction: an idempotency key already used returns the existing task. */
  async function insertRows(client: pg.PoolClient, tasks: readonly NewTask[], events: TaskEvent[]): Promise<InsertResult[]> {
    if (tasks.length === 0) return [];
    const now = Date.now();
    const rows = tasks.map((task) => ({ task, columns: initialColumns(task, now) }));
    const column = <T>(pick: (row: (typeof rows)[number]) => T) => rows.map(pick);
    // One statement for the whole batch: arrays, one per column, unnested into rows.
    const { rows: inserted } = await client.query<{ id: string }>(
      SQL.insert,
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
        column((r) => r.task.options.retention?.succeededMs ?? null),
        column((r) => r.task.options.retention?.failedMs ?? null),
        column((r) => r.task.options.retention?.cancelledMs ?? null),
        column((r) => r.task.options.concurrencyKey ?? null),
        column((r) => (r.task.options.concurrencyKey === undefined ? null : (r.task.options.concurrencyLimit ?? 1))),
      ],
    );
    const created = new Set(inserted.map((row) => row.id));
    const results: InsertResult[] = [];
    for (const { task, columns } of rows) {
      if (!created.has(task.id)) {
        // The idempotency key was taken: by an earlier task, or by one earlier in this batch.
        const existing = await client.query<TaskRow>(SQL.byKey, [task.options.idempotencyKey]);
        results.push({ task: toRecord(existing.rows[0]!), existing: true });
        continue;
      }
      events.push(insertedEvent(task, columns, now));
      results.push({ existing: false, task: insertedRecord(task, columns, now) });
    }
    return results;
  }

  const schedules = postgresSchedules({
    pool,
    write,
    insertRows,
    announce: notifications.schedulesChanged,
    onRemoteChange: notifications.onSchedulesChanged,
  });

  return {
    ...schedules,
    ...postgresPauses({ pool, write, announce: notifications.sendPause, changed: pauseChanged }),

    insert(tasks) {
      return write((client, events) => insertRows(client, tasks, events));
    },

    claim(request: ClaimRequest) {
      if (request.limit <= 0 || request.types.length === 0) return Promise.resolve([]);
      return write(async (client, events) => {
        const { rows } = await client.query<ClaimedRow>(
          SQL.claim,
          [request.owner, request.workerId, request.now + request.leaseMs, request.now, request.types, request.limit],
        );
        return rows.map((row) => claimed(row, events));
      });
    },

    complete(items, now) {
      if (items.length === 0) return Promise.resolve([]);
      return write(async (client, events) => {
        const { rows } = await client.query<EndedAttemptRow & { id: string; attempt: number }>(
          SQL.complete,
          [items.map((i) => i.id), items.map((i) => i.attempt), items.map((i) => i.output.typeUrl), items.map((i) => Buffer.from(i.output.value)), now],
        );
        const applied = new Map(rows.map((row) => [`${row.id}#${row.attempt}`, row]));
        return items.map((item): Fenced => {
          const row = applied.get(`${item.id}#${item.attempt}`);
          if (row === undefined) return { applied: false };
          applied.delete(`${item.id}#${item.attempt}`);
          events.push(attemptEnded(item, row, S.TASK_STATE_SUCCEEDED, now, { output: item.output }));
          return { applied: true, state: S.TASK_STATE_SUCCEEDED };
        });
      });
    },

    fail(items, now) {
      return write(async (client, events) => {
        const results: Fenced[] = [];
        for (const item of items) {
          const { rows } = await client.query<EndedAttemptRow & FailingRow>(SQL.running, [item.id, item.attempt]);
          const row = rows[0];
          if (row === undefined) {
            results.push({ applied: false });
            continue;
          }
          const { state, error, runAt, finishedAt, expiresAt } = decideFail(item, row, now);
          await client.query(SQL.fail, [item.id, item.attempt, state, JSON.stringify([error]), now, runAt, finishedAt, expiresAt]);
          events.push(attemptEnded(item, row, state, now, { error }));
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
            SQL.release,
            [item.id, item.attempt, now],
          );
          const row = rows[0];
          if (row === undefined) {
            results.push({ applied: false });
            continue;
          }
          events.push(attemptEnded(item, row, transitions.release.to, now));
          results.push({ applied: true, state: transitions.release.to });
        }
        return results;
      });
    },

    progress(items) {
      return write(async (client, events) => {
        for (const item of items) {
          const { rows } = await client.query<{ type: string; queue: string }>(
            SQL.progress,
            [item.id, item.attempt, item.percent, item.message],
          );
          if (rows[0] === undefined) continue;
          events.push({
            id: item.id,
            type: rows[0].type,
            queue: rows[0].queue,
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
          SQL.renew,
          [leases.map((l) => l.id), leases.map((l) => l.attempt), expiresAt, owner],
        );
        return result.rowCount ?? 0;
      });
    },

    extendLeases(until) {
      return write(async (client) => (await client.query(SQL.extendLeases, [until])).rowCount ?? 0);
    },

    resume(owner, workerId, refs, expiresAt) {
      return write(async (client) => {
        const kept = [];
        for (const ref of refs) {
          const result = await client.query<{ type: string }>(
            SQL.resume,
            [owner, workerId, expiresAt, ref.id, ref.attempt],
          );
          const row = result.rows[0];
          if (row !== undefined) kept.push({ id: ref.id, attempt: ref.attempt, type: row.type });
        }
        return kept;
      });
    },

    cancel(id, reason, now) {
      return write(async (client, events) => {
        const before = await mustGet(client, id, true);
        const event = decideCancel(before, now);
        if ((await client.query(SQL.cancel, [id, reason, now])).rowCount === 0) throw refusal('cancel', before);
        events.push(event);
        return mustGet(client, id);
      });
    },

    revive(id, now) {
      return write(async (client, events) => {
        const before = await mustGet(client, id, true);
        const event = decideRevive(before);
        if ((await client.query(SQL.revive, [id, now])).rowCount === 0) throw refusal('revive', before);
        events.push(event);
        return mustGet(client, id);
      });
    },

    get,
    outcome,

    async list(filter: ListFilter, pageSize, cursor) {
      const oldestFirst = filter.order === 'oldest';
      const after = cursor === undefined ? undefined : decodeCursor(cursor, oldestFirst);
      const { rows } = await pool.query<TaskRow>(listSql('postgres', ROW, filter, after, pageSize + 1));
      return listPage(rows, pageSize, oldestFirst);
    },

    async matching(query, limit, after) {
      const { rows } = await pool.query<{ id: string; seq: number }>(matchingSql('postgres', query, after, limit));
      return rows;
    },

    async waitingKeys(queue) {
      const { rows } = await (queue === undefined ? pool.query<KeyCounts>(waitingKeysSql(undefined)) : pool.query<KeyCounts>(waitingKeysSql('$1'), [queue]));
      return rows;
    },

    async stats(queue) {
      const { rows } = await (queue === undefined ? pool.query(SQL.statsAll) : pool.query(SQL.statsQueue, [queue]));
      return queueCounts(rows);
    },

    promoteDue(now) {
      return write(async (client, events) => {
        const { rows } = await client.query<{ id: string; type: string; queue: string; attempt: number }>(
          SQL.promote,
          [now],
        );
        for (const row of rows) events.push({ ...row, state: transitions.promote.to, previous: S.TASK_STATE_SCHEDULED });
        return rows.length;
      });
    },

    expireQueued(now) {
      return write(async (client, events) => {
        const { rows } = await client.query<{ id: string; type: string; queue: string; attempt: number }>(
          SQL.expire,
          [now, JSON.stringify([queueTimeoutError(0, now)])],
        );
        for (const row of rows) {
          events.push({ ...row, state: transitions.expire.to, previous: S.TASK_STATE_QUEUED, error: queueTimeoutError(row.attempt, now), finishedAt: now });
        }
        return rows.length;
      });
    },

    async overdue(now, limit) {
      const deadlines = await pool.query<OverdueRow>(SQL.deadlinePassed, [now, limit]);
      const leases = await pool.query<OverdueRow>(SQL.leaseExpired, [now, limit]);
      return [...deadlines.rows.map(overdueAttempt('deadline')), ...leases.rows.map(overdueAttempt('lease'))];
    },

    async oldestQueued() {
      const { rows } = await pool.query<{ queue: string; due: number }>(SQL.oldestQueued);
      return rows.map((row) => ({ queue: row.queue, dueAt: row.due }));
    },

    async countByState() {
      const { rows } = await pool.query<{ state: TaskState; n: number }>(SQL.countByState);
      const counts: Partial<Record<TaskState, number>> = {};
      for (const row of rows) counts[row.state] = row.n;
      return counts;
    },

    // Not through the group commit: PostgreSQL takes writes concurrently, and a
    // delete in its own transaction never holds up the commits of the hot path.
    async deleteExpired(now, limit) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const started = performance.now();
        const { rows } = await client.query<{ queue: string; state: number }>(SQL.deleteExpired, [now, limit]);
        const busyMs = performance.now() - started;
        const deleted = deletions(rows, 'retention');
        await notifications.sendDeletions(client, deleted);
        await client.query('COMMIT');
        emitDeletions(deleted);
        return { deleted: rows.length, busyMs };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    onDeleted(listener) {
      deletionListeners.add(listener);
      return () => deletionListeners.delete(listener);
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    onQueuePause(listener) {
      pauseListeners.add(listener);
      return () => pauseListeners.delete(listener);
    },

    async delete(id) {
      const { before, deleted } = await write(async (client) => {
        const before = await mustGet(client, id, true);
        if ((await client.query(SQL.delete, [id])).rowCount === 0) throw refusal('delete', before);
        const deleted = deletions([{ queue: before.options.queue, state: before.state }], 'request');
        await notifications.sendDeletions(client, deleted);
        return { before, deleted };
      });
      emitDeletions(deleted);
      return before;
    },

    async purge(request) {
      const states = purgeStates(request.states);
      const deleted = await write(async (client) => {
        const { rows } = await client.query<{ queue: string; state: number }>(SQL.purge, [request.queue, states, request.finishedBefore ?? null, request.limit]);
        const deleted = deletions(rows, 'request');
        await notifications.sendDeletions(client, deleted);
        return deleted;
      });
      emitDeletions(deleted);
      return deleted.reduce((n, d) => n + d.count, 0);
    },

    workers: sharedWorkers(pool),

    onCommit(listener) {
      commitListeners.add(listener);
      return () => commitListeners.delete(listener);
    },

    onWriteHealth(listener) {
      healthListeners.add(listener);
      return () => healthListeners.delete(listener);
    },

    async close() {
      if (!(await commits.close())) return;
      await notifications.close();
      await pool.end();
    },
  };
}
