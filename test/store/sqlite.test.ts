import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/index.js';
import { describeStoreConformance } from './conformance.js';
import { describeQueueControlConformance } from './conformance-controls.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
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
