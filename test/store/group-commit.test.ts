import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Code, TaskwireError } from '../../src/errors.js';
import { createGroupCommit } from '../../src/store/sqlite/group-commit.js';

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/**
 * A database that runs out of room: SQLite's max_page_count makes a write
 * past it fail with SQLITE_FULL, as a full disk does, without root.
 */
function smallDatabase() {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-full-'));
  const path = join(dir, 'full.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (v BLOB)');
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma(`max_page_count = ${pages + 4}`);
  const health: Array<string | undefined> = [];
  const commits = createGroupCommit(db, { commitIntervalMs: 0, path, publish: () => undefined, health: (failure) => health.push(failure?.message) });
  const insert = db.prepare('INSERT INTO t VALUES (?)');
  const row = (bytes: number) => commits.write(() => insert.run(Buffer.alloc(bytes)).changes);
  return { db, path, health, row, commits };
}

describe('sqlite group commit on a full disk', () => {
  it('fails the writes of a commit that does not fit with RESOURCE_EXHAUSTED naming the file, reports it once, and recovers on the next write that changes rows', async () => {
    const { db, path, health, row, commits } = smallDatabase();
    expect(await row(100)).toBe(1);
    const count = () => db.prepare('SELECT COUNT(*) FROM t').pluck().get();
    // One turn: a small write and one that cannot fit. SQLite rolls back the whole transaction on
    // SQLITE_FULL, so both fail, saying why; neither is reported done.
    const [small, big] = await Promise.allSettled([row(100), row(64 * 1024)]);
    expect([small.status, big.status]).toEqual(['rejected', 'rejected']);
    expect((small as PromiseRejectedResult).reason).toBe((big as PromiseRejectedResult).reason);
    const error = (big as PromiseRejectedResult).reason as TaskwireError;
    expect(error).toBeInstanceOf(TaskwireError);
    expect(error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error.message).toBe(`the disk is full: the SQLite database ${path} cannot be written; free space on that disk (writes resume by themselves once there is room), then retry`);
    await expect(row(64 * 1024)).rejects.toThrow(/the disk is full/);
    expect(health).toEqual([error.message]);
    expect(count()).toBe(1);

    // A commit that changes nothing proves nothing; one that changes rows does.
    db.pragma('max_page_count = 100000');
    await commits.write(() => 0);
    expect(health).toEqual([error.message]);
    expect(await row(64 * 1024)).toBe(1);
    expect(health).toEqual([error.message, undefined]);
    db.close();
  });
});
