import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../../src/store/index.js';
import { OLDEST_QUEUED_SQL } from '../../src/store/rows.js';
import { prepareStatements } from '../../src/store/sqlite/statements.js';
import { describeStoreConformance, ECHO, newTask } from './conformance.js';
import { describeFilterConformance } from './filters.js';
import { describeScheduleConformance } from './schedule-conformance.js';
import { describeKeyConformance } from './key-conformance.js';
import { describeQueueControlConformance } from './conformance-controls.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
describeScheduleConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
describeKeyConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
describeQueueControlConformance('sqlite', async () => {
  const path = join(dir, `store-${n++}.db`);
  return { store: createSqliteStore({ path }), readyRows: async () => readyIndexEntries(path) };
});

/** The entries of tasks_ready itself (dbstat: an index b-tree keeps entries in its interior pages too), read through a second connection. */
function readyIndexEntries(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(`SELECT COALESCE(SUM(ncell), 0) AS n FROM dbstat WHERE name = 'tasks_ready'`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('sqlite queue pauses', () => {
  it('outlive reopening the database', async () => {
    const path = join(dir, 'pauses.db');
    const first = createSqliteStore({ path });
    await first.pauseQueue('held', Date.now());
    await first.close();
    const second = createSqliteStore({ path });
    expect(await second.pausedQueues()).toEqual(['held']);
    expect(second.workers).toBeUndefined();
    await second.close();
  });
});

/** Deletes through a second connection to the same file, as another writer would. */
function sqliteWithRemove() {
  const path = join(dir, `store-${n++}.db`);
  const store = createSqliteStore({ path });
  const remove = async (ids: readonly string[]) => {
    const db = new Database(path);
    try {
      db.prepare(`DELETE FROM tasks WHERE id IN (${ids.map(() => '?').join(', ')})`).run(...ids);
    } finally {
      db.close();
    }
  };
  return { store, remove, path };
}

describeFilterConformance('sqlite', async () => sqliteWithRemove());

describe('sqlite keyset pages', () => {
  it('see a deleted newest row\'s seq reused, which a listing survives (filters.ts checks the pages)', async () => {
    const { store, remove, path } = sqliteWithRemove();
    const [a, b] = [newTask(), newTask()];
    await store.insert([a, b]);
    const seqOf = (id: string) => {
      const db = new Database(path, { readonly: true });
      try {
        return (db.prepare('SELECT seq FROM tasks WHERE id = ?').get(id) as { seq: number }).seq;
      } finally {
        db.close();
      }
    };
    const bSeq = seqOf(b.id);
    const page = await store.list({ order: 'oldest' }, 1, undefined);
    await remove([b.id]);
    const c = newTask();
    await store.insert([c]);
    expect(seqOf(c.id)).toBe(bSeq); // INTEGER PRIMARY KEY without AUTOINCREMENT: max(seq) + 1
    // The listing goes on after a's seq: c, newer than every row alive, is next, once.
    const rest = await store.list({ order: 'oldest' }, 10, page.next);
    expect(rest.tasks.map((t) => t.id)).toEqual([c.id]);
    await store.close();
  });
});

describe('sqlite store open', () => {
  it('names the file when it is not a database', () => {
    const path = join(dir, 'not-a-database.db');
    writeFileSync(path, 'x'.repeat(4096));
    expect(() => createSqliteStore({ path })).toThrow(`${path} is not a SQLite database (file is not a database)`);
  });

  it('names the file when it cannot be opened', () => {
    const path = join(dir, 'a-directory.db');
    mkdirSync(path);
    expect(() => createSqliteStore({ path })).toThrow(`cannot open the database file ${path} (unable to open database file)`);
  });
});

describe('sqlite store plans', () => {
  it('finds the oldest queued task of each queue through its index, never by reading the table', async () => {
    const path = join(dir, 'plan.db');
    await createSqliteStore({ path }).close();
    const db = new Database(path, { readonly: true });
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${OLDEST_QUEUED_SQL}`).all() as Array<{ detail: string }>).map((row) => row.detail);
    db.close();
    const reads = plan.filter((line) => /^(SCAN|SEARCH) (tasks|t)\b/.test(line));
    expect(reads).toHaveLength(3);
    for (const line of reads) expect(line).toMatch(/^SEARCH (tasks|t) USING COVERING INDEX tasks_queued_due/);
  });

  it('claims through tasks_ready, which holds none of a paused backlog: a claim steps over none of it', async () => {
    const path = join(dir, 'claim-plan.db');
    const store = createSqliteStore({ path });
    await store.insert(Array.from({ length: 1200 }, () => newTask({ options: { queue: 'held' } })));
    await store.pauseQueue('held', Date.now());
    const free = newTask({ options: { queue: 'free' } });
    await store.insert([free]);

    const db = new Database(path, { readonly: true });
    const claimSql = prepareStatements(db).claimStatement([ECHO]).source;
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${claimSql}`).all(ECHO, { owner: 'o', workerId: 'w', leaseExpiresAt: 0, now: 0, limit: 1 }) as Array<{ detail: string }>).map((row) => row.detail);
    db.close();
    expect(plan.filter((line) => /^(SCAN|SEARCH) t\b/.test(line))).toEqual(['SEARCH t USING INDEX tasks_ready (type=?)']);
    expect(readyIndexEntries(path)).toBe(1);
    const claim = () => store.claim({ types: [ECHO], limit: 5, owner: 'o', workerId: 'w', leaseMs: 10_000, now: Date.now() });
    expect((await claim()).map((lease) => lease.id)).toEqual([free.id]);
    await store.close();
  });
});

describe('sqlite schema version 6', () => {
  it('flags the waiting tasks of queues paused before it', async () => {
    const path = join(dir, 'version-5.db');
    const store = createSqliteStore({ path });
    const held = newTask({ options: { queue: 'held', priority: 5 } });
    const free = newTask({ options: { queue: 'free' } });
    await store.insert([held, free]);
    await store.pauseQueue('held', Date.now());
    await store.close();
    // Back to version 5's schema: no flags, and every QUEUED task in tasks_ready.
    const db = new Database(path);
    db.exec(`
      DROP INDEX tasks_ready; DROP INDEX tasks_paused; ALTER TABLE tasks DROP COLUMN paused;
      CREATE INDEX tasks_ready ON tasks (type, priority DESC, seq) WHERE state = 2;
      PRAGMA user_version = 5;`);
    db.close();
    expect(readyIndexEntries(path)).toBe(2);

    const upgraded = createSqliteStore({ path });
    expect(readyIndexEntries(path)).toBe(1);
    const claim = () => upgraded.claim({ types: [ECHO], limit: 5, owner: 'o', workerId: 'w', leaseMs: 10_000, now: Date.now() });
    expect((await claim()).map((lease) => lease.id)).toEqual([free.id]);
    await upgraded.resumeQueue('held');
    expect((await claim()).map((lease) => lease.id)).toEqual([held.id]);
    await upgraded.close();
  });
});
