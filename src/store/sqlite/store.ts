import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadSqlite } from '../drivers.js';
import type { Database } from 'better-sqlite3';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { diskFull, failedPrecondition, notFound } from '../../errors.js';
import { decodeCursor, listPage } from '../cursor.js';
import { listSql, matchingSql } from '../filter.js';
import { decideCancel, decideFail, decideRevive, purgeStates, queueTimeoutError, refusal, type FailingRow } from '../decisions.js';
import { transitions } from '../transitions.js';
import type {
  ClaimRequest,
  Deletion,
  DeletionListener,
  Fenced,
  InsertResult,
  KeyCounts,
  NewTask,
  Store,
  TaskEvent,
  TaskListener,
  TaskRecord,
} from '../types.js';
import { createGroupCommit } from './group-commit.js';
import { migrate } from './migrations.js';
import { prepareStatements, purgeSql } from './statements.js';
import { sqliteSchedules } from './schedules.js';
import { sqlitePauses } from './pauses.js';
import { waitingKeysSql } from '../keys.js';
import { attemptEnded, claimed, deletions, type ClaimedRow, type EndedAttemptRow } from '../events.js';
import { initialColumns, insertedEvent, insertedRecord, jsonOrNull, metadataJson } from '../inserts.js';
import { overdueAttempt, queueCounts, toRecord, toTaskEnd, type OutcomeRow, type OverdueRow, type TaskRow } from '../rows.js';

export interface SqliteStoreOptions {
  /** Database file; created with its directory if missing. ":memory:" for a throwaway store. */
  readonly path: string;
  /** FULL (default) survives power loss; NORMAL only process crashes. */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /**
   * Least time between two commits once the server is busy, in ms. Default 2.
   * A commit that carried many changes (BUSY_COMMIT or more) marks the store
   * busy, and the next commit waits until this long after it, so more writes
   * share it: fewer commits, and each page they would all touch is written
   * once. A quiet store commits on the next turn of the event loop. 0: always
   * on the next turn.
   */
  readonly commitIntervalMs?: number;
  /**
   * Longest a quiet store's commit waits for a write it was told to expect
   * (`Store.hold`: the result of a task sent to its worker ahead of its
   * insert), in ms after the first write of that commit. Default 2; 0 never
   * waits.
   */
  readonly lingerMs?: number;
}

const S = TaskState;

/** Opens (creating if missing) and migrates the database; an error names the file and what to do. */
function openDatabase(options: SqliteStoreOptions): Database {
  const path = options.path;
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const Driver = loadSqlite(); // outside the try: a missing driver says to install it, not that the path is wrong
  let db: Database | undefined;
  try {
    db = new Driver(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return db;
  } catch (error) {
    db?.close();
    throw openError(path, error);
  }
}

function openError(path: string, error: unknown): Error {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB') {
    return failedPrecondition(`${path} is not a SQLite database (${message}): point --db at a taskwire database or at a new file`);
  }
  if (code === 'SQLITE_CANTOPEN') {
    return failedPrecondition(`cannot open the database file ${path} (${message}): it must be a file, in a directory this user can write`);
  }
  if (code === 'SQLITE_FULL') return diskFull(`the SQLite database ${path}`);
  if (error instanceof Error && !message.includes(path)) error.message = `${path}: ${message}`;
  return error instanceof Error ? error : new Error(message);
}

/**
 * The embedded store: SQLite in WAL mode, every write through the group
 * commit (group-commit.ts), events published after each commit.
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  const db = openDatabase(options);

  const { st, claimStatement, prepared } = prepareStatements(db);

  const listeners = new Set<TaskListener>();
  const deletionListeners = new Set<DeletionListener>();
  const publishDeletions = (deleted: readonly Deletion[]) => {
    if (deleted.length > 0) for (const listener of deletionListeners) listener(deleted);
  };
  const healthListeners = new Set<(failure: Error | undefined) => void>();
  const commitListeners = new Set<(seconds: number, writes: number) => void>();
  const purgeStatements = new Map<string, ReturnType<Database['prepare']>>();
  const commits = createGroupCommit(db, {
    path: options.path,
    health: (failure) => {
      for (const listener of healthListeners) listener(failure);
    },
    commitIntervalMs: options.commitIntervalMs ?? 2,
    lingerMs: options.lingerMs ?? 2,
    committed: (seconds, writes) => {
      for (const listener of commitListeners) listener(seconds, writes);
    },
    publish: (events) => {
      for (const listener of listeners) listener(events);
    },
  });
  const write = commits.write;

  // ---- reads ----

  function get(id: string): TaskRecord | undefined {
    const row = st.byId.get(id) as TaskRow | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  function mustGet(id: string): TaskRecord {
    const task = get(id);
    if (task === undefined) throw notFound(`no task with id "${id}"`);
    return task;
  }

  /** Inserts tasks inside the caller's write: an idempotency key already used returns the existing task. */
  function insertRows(tasks: readonly NewTask[], events: TaskEvent[]): InsertResult[] {
    const now = Date.now();
    return tasks.map((task): InsertResult => {
      const o = task.options;
      const columns = initialColumns(task, now);
      // Positional: binding 30 named parameters costs several µs per row more.
      const info = st.insert.run(
        task.id,
        task.type,
        o.queue,
        columns.state,
        o.priority,
        task.input.typeUrl,
        task.input.value,
        jsonOrNull(o.labels),
        jsonOrNull(o.traceContext),
        metadataJson(o),
        o.maxAttempts,
        JSON.stringify(o.backoff),
        o.executionTimeoutMs ?? null,
        o.queueTimeoutMs ?? null,
        columns.queueDeadlineAt,
        o.idempotencyKey ?? null,
        Math.max(task.runAt, 0),
        now,
        now,
        columns.attempt,
        columns.leaseOwner,
        columns.workerId,
        columns.leaseExpiresAt,
        columns.startedAt,
        columns.deadlineAt,
        o.retention?.succeededMs ?? null,
        o.retention?.failedMs ?? null,
        o.retention?.cancelledMs ?? null,
        o.concurrencyKey ?? null,
        o.concurrencyKey === undefined ? null : (o.concurrencyLimit ?? 1),
        o.queue, // for the paused flag
      );
      if (info.changes === 0) {
        return { task: toRecord(st.byKey.get(o.idempotencyKey) as TaskRow), existing: true };
      }
      events.push(insertedEvent(task, columns, now));
      return { existing: false, task: insertedRecord(task, columns, now) };
    });
  }

  const schedules = sqliteSchedules({ db, write, insertRows });
  const waitingKeysAll = db.prepare(waitingKeysSql(undefined));
  const waitingKeysQueue = db.prepare(waitingKeysSql('?'));

  return {
    ...schedules,
    ...sqlitePauses(db, write),

    insert(tasks) {
      return write((events) => insertRows(tasks, events));
    },

    claim(request: ClaimRequest) {
      if (request.limit <= 0 || request.types.length === 0) return Promise.resolve([]);
      return write((events) => {
        const rows = claimStatement(request.types).all(...request.types, {
          owner: request.owner,
          workerId: request.workerId,
          leaseExpiresAt: request.now + request.leaseMs,
          now: request.now,
          limit: request.limit,
        }) as ClaimedRow[];
        return rows.map((row) => claimed(row, events));
      });
    },

    complete(items, now) {
      return write((events) =>
        items.map((item): Fenced => {
          const row = st.complete.get(item.output.typeUrl, item.output.value, now, now, now, item.id, item.attempt) as
            | EndedAttemptRow
            | undefined;
          if (row === undefined) return { applied: false };
          events.push(attemptEnded(item, row, S.TASK_STATE_SUCCEEDED, now, { output: item.output }));
          return { applied: true, state: S.TASK_STATE_SUCCEEDED };
        }),
      );
    },

    fail(items, now) {
      return write((events) =>
        items.map((item): Fenced => {
          const row = st.running.get(item.id, item.attempt) as (EndedAttemptRow & FailingRow) | undefined;
          if (row === undefined) return { applied: false };
          const decision = decideFail(item, row, now);
          const { state, error } = decision;
          st.fail.run({ ...decision, id: item.id, attempt: item.attempt, now, error: JSON.stringify(error) });
          events.push(attemptEnded(item, row, state, now, { error }));
          return { applied: true, state };
        }),
      );
    },

    release(items, now) {
      return write((events) =>
        items.map((item): Fenced => {
          const row = st.release.get(now, item.id, item.attempt) as EndedAttemptRow | undefined;
          if (row === undefined) return { applied: false };
          events.push(attemptEnded(item, row, transitions.release.to, now));
          return { applied: true, state: transitions.release.to };
        }),
      );
    },

    progress(items) {
      return write((events) => {
        for (const item of items) {
          const row = st.progress.get(item.percent, item.message, item.id, item.attempt) as { type: string; queue: string } | undefined;
          if (row === undefined) continue;
          events.push({
            id: item.id,
            type: row.type,
            queue: row.queue,
            state: S.TASK_STATE_RUNNING,
            attempt: item.attempt,
            previous: S.TASK_STATE_RUNNING,
            progress: { percent: item.percent, message: item.message },
          });
        }
      });
    },

    renewLeases(owner, leases, expiresAt) {
      return write(() => leases.reduce((n, lease) => n + st.renew.run(expiresAt, lease.id, lease.attempt, owner).changes, 0));
    },

    extendLeases(until) {
      return write(() => st.extendLeases.run({ until }).changes);
    },

    resume(owner, workerId, refs, expiresAt) {
      return write(() =>
        refs.flatMap((ref) => {
          const row = st.resume.get(owner, expiresAt, ref.id, ref.attempt, workerId) as { type: string } | undefined;
          return row === undefined ? [] : [{ id: ref.id, attempt: ref.attempt, type: row.type }];
        }),
      );
    },

    cancel(id, reason, now) {
      return write((events) => {
        const before = mustGet(id);
        const event = decideCancel(before, now);
        if (st.cancel.run(reason, now, now, now, id).changes === 0) throw refusal('cancel', before);
        events.push(event);
        return mustGet(id);
      });
    },

    revive(id, now) {
      return write((events) => {
        const before = mustGet(id);
        const event = decideRevive(before);
        if (st.revive.run(now, now, id).changes === 0) throw refusal('revive', before);
        events.push(event);
        return mustGet(id);
      });
    },

    async get(id) {
      return get(id);
    },

    async outcome(id) {
      const row = st.outcomeById.get(id) as OutcomeRow | undefined;
      return row === undefined ? undefined : toTaskEnd(id, row);
    },

    async list(filter, pageSize, cursor) {
      const oldestFirst = filter.order === 'oldest';
      const after = cursor === undefined ? undefined : decodeCursor(cursor, oldestFirst);
      const query = listSql('sqlite', '*', filter, after, pageSize + 1);
      return listPage(prepared(query.text).all(...query.values) as TaskRow[], pageSize, oldestFirst);
    },

    async matching(query, limit, after) {
      const select = matchingSql('sqlite', query, after, limit);
      return prepared(select.text).all(...select.values) as Array<{ id: string; seq: number }>;
    },

    async waitingKeys(queue) {
      const rows = queue === undefined ? waitingKeysAll.all() : waitingKeysQueue.all(queue);
      return rows as KeyCounts[];
    },

    async stats(queue) {
      const rows = (queue === undefined ? st.statsAll.all() : st.statsQueue.all(queue)) as Array<{ queue: string; state: TaskState; n: number }>;
      return queueCounts(rows);
    },

    promoteDue(now) {
      return write((events) => {
        const rows = st.promote.all(now, now) as Array<{ id: string; type: string; queue: string; attempt: number }>;
        for (const row of rows) {
          events.push({ ...row, state: transitions.promote.to, previous: S.TASK_STATE_SCHEDULED });
        }
        return rows.length;
      });
    },

    expireQueued(now) {
      return write((events) => {
        const rows = st.expire.all({ now, error: JSON.stringify(queueTimeoutError(0, now)) }) as Array<{ id: string; type: string; queue: string; attempt: number }>;
        for (const row of rows) {
          events.push({ ...row, state: transitions.expire.to, previous: S.TASK_STATE_QUEUED, error: queueTimeoutError(row.attempt, now), finishedAt: now });
        }
        return rows.length;
      });
    },

    async overdue(now, limit) {
      return [
        ...(st.deadlinePassed.all(now, limit) as OverdueRow[]).map(overdueAttempt('deadline')),
        ...(st.leaseExpired.all(now, limit) as OverdueRow[]).map(overdueAttempt('lease')),
      ];
    },

    async oldestQueued() {
      return (st.oldestQueued.all() as Array<{ queue: string; due: number }>).map((row) => ({ queue: row.queue, dueAt: row.due }));
    },

    async countByState() {
      const counts: Partial<Record<TaskState, number>> = {};
      for (const row of st.countByState.all() as Array<{ state: TaskState; n: number }>) counts[row.state] = row.n;
      return counts;
    },

    async deleteExpired(now, limit) {
      const { rows, busyMs } = await write(() => {
        const started = performance.now();
        const rows = st.deleteExpired.all(now, limit) as Array<{ queue: string; state: number }>;
        return { rows, busyMs: performance.now() - started };
      });
      // After the commit, as the commit's own events are.
      publishDeletions(deletions(rows, 'retention'));
      return { deleted: rows.length, busyMs };
    },

    onDeleted(listener) {
      deletionListeners.add(listener);
      return () => deletionListeners.delete(listener);
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async delete(id) {
      const before = await write(() => {
        const before = mustGet(id);
        if (st.delete.run(id).changes === 0) throw refusal('delete', before);
        return before;
      });
      // After the commit, as the commit's own events are.
      publishDeletions(deletions([{ queue: before.options.queue, state: before.state }], 'request'));
      return before;
    },

    async purge(request) {
      const states = purgeStates(request.states);
      const rows = await write(() => {
        const sql = purgeSql(states);
        let statement = purgeStatements.get(sql);
        if (statement === undefined) purgeStatements.set(sql, (statement = db.prepare(sql)));
        return statement.all({ queue: request.queue, before: request.finishedBefore ?? null, limit: request.limit }) as Array<{ queue: string; state: number }>;
      });
      publishDeletions(deletions(rows, 'request'));
      return rows.length;
    },

    hold: commits.hold,

    onCommit(listener) {
      commitListeners.add(listener);
      return () => commitListeners.delete(listener);
    },

    onWriteHealth(listener) {
      healthListeners.add(listener);
      return () => healthListeners.delete(listener);
    },

    async close() {
      if (commits.close()) db.close();
    },
  };
}

