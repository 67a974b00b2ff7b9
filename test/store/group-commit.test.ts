import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
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

describe('sqlite group commit holding a commit for an expected write (Store.hold)', () => {
  /** A store on a real file that records what each commit carried, and when it ended. */
  function recording(lingerMs: number) {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-hold-'));
    const path = join(dir, 'hold.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (v TEXT)');
    const commits: Array<{ writes: number; at: number }> = [];
    const group = createGroupCommit(db, {
      commitIntervalMs: 2,
      lingerMs,
      path,
      publish: () => undefined,
      health: () => undefined,
      committed: (_seconds, writes) => commits.push({ writes, at: performance.now() }),
    });
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    const row = (v: string) => group.write(() => insert.run(v).changes);
    return { db, group, commits, row };
  }

  it('makes the insert and the write it waits for one commit, and commits as soon as it is released', async () => {
    const { db, group, commits, row } = recording(60_000);
    const first = row('insert');
    const release = group.hold(0);
    expect(release).toBeDefined();
    // The expected write comes later, from another turn of the loop (a worker's answer).
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(commits).toEqual([]);
    const second = row('result');
    release!();
    expect(await Promise.all([first, second])).toEqual([1, 1]);
    expect(commits.map((c) => c.writes)).toEqual([2]);
    // A release after its commit ran holds nothing back.
    release!();
    expect(await row('later')).toBe(1);
    expect(commits.map((c) => c.writes)).toEqual([2, 1]);
    db.close();
  });

  it('commits after its linger when the expected write never comes', async () => {
    const { db, group, commits, row } = recording(30);
    const began = performance.now();
    const first = row('insert');
    expect(group.hold(0)).toBeDefined();
    expect(await first).toBe(1);
    expect(commits).toHaveLength(1);
    expect(commits[0]!.at - began).toBeGreaterThanOrEqual(29);
    db.close();
  });

  it('holds nothing for a write expected later than its linger, with nothing pending, or while busy', async () => {
    const { db, group, row } = recording(30);
    expect(group.hold(0)).toBeUndefined();
    const pending = row('insert');
    expect(group.hold(31)).toBeUndefined();
    await pending;
    // A commit of many task changes makes the store busy: the next commits keep to their interval instead.
    const changes = Array.from({ length: 40 }, (_, i) =>
      group.write((events) => {
        events.push({ id: String(i), type: 't', queue: 'q', state: TaskState.TASK_STATE_QUEUED, previous: TaskState.TASK_STATE_UNSPECIFIED, attempt: 0 });
        return 1;
      }),
    );
    await Promise.all(changes);
    const busy = row('after a busy commit');
    expect(group.hold(0)).toBeUndefined();
    await busy;
    // Once its interval has passed, a store that was busy holds again.
    const busyAgain = Array.from({ length: 40 }, (_, i) =>
      group.write((events) => {
        events.push({ id: `b${i}`, type: 't', queue: 'q', state: TaskState.TASK_STATE_QUEUED, previous: TaskState.TASK_STATE_UNSPECIFIED, attempt: 0 });
        return 1;
      }),
    );
    await Promise.all(busyAgain);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const quiet = row('a quiet moment later');
    const release = group.hold(0);
    expect(release).toBeDefined();
    release!();
    await quiet;
    db.close();
  });
});
