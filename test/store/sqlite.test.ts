import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/index.js';
import { describeStoreConformance } from './conformance.js';
import { describeScheduleConformance } from './schedule-conformance.js';
import { describeKeyConformance } from './key-conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
describeScheduleConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
describeKeyConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));

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
