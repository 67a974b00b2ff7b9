import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createSqliteStore } from '../../src/store/index.js';
import { OLDEST_QUEUED_SQL } from '../../src/store/rows.js';
import { describeStoreConformance } from './conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));

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
