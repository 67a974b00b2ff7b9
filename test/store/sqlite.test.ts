import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../../src/store/index.js';
import { OLDEST_QUEUED_SQL } from '../../src/store/rows.js';
import { describeStoreConformance, newTask } from './conformance.js';
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
describeQueueControlConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));

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
});
