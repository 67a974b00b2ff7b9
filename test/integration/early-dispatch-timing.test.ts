import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { createSqliteStore, type Store } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * How early a task reaches its worker on a real disk: a worker in a process
 * of its own starts the task while the server is still inside the commit of
 * the task's insert. The commit blocks the server's thread (better-sqlite3 is
 * synchronous), so this holds only if the assignment is in the socket before
 * the commit begins (Dispatcher.insert sends it before the insert;
 * sqlite/group-commit.ts commits after the turn's socket writes).
 */
const ECHO = '/demo.v1.DemoService/Echo';
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

describe('early dispatch on a real disk', () => {
  it("has a worker in another process start the task before its insert's commit ends", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskwire-early-timing-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const base = createSqliteStore({ path: join(dir, 'tasks.db'), synchronous: 'FULL' });
    cleanup.push(() => base.close());
    // The end of every commit on the monotonic clock, and how long it took.
    let last = { end: 0n, ns: 0n };
    base.onCommit((seconds) => (last = { end: process.hrtime.bigint(), ns: BigInt(Math.round(seconds * 1e9)) }));
    const commits = new Map<string, { start: bigint; end: bigint }>();
    const store: Store = {
      ...base,
      // The commit that stored these tasks is the last one to end before their promise resolves.
      insert: (tasks) =>
        base.insert(tasks).then((results) => {
          for (const task of tasks) commits.set(task.id, { start: last.end - last.ns, end: last.end });
          return results;
        }),
    };
    const stack = await startStack({ store });
    cleanup.push(() => stack.stop());
    const worker = new Proc(
      spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/timing-worker.ts'), stack.address], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    cleanup.push(() => worker.kill());
    await worker.waitForLine((line) => line.msg === 'worker started', 30_000);
    const client = stack.client();
    // Once a task has run, the dispatcher knows nothing waits and leases the next in its insert.
    await client.run(ECHO, pack(EchoRequest, { text: 'warm' }));

    // One submit message: the task, and 999 for later carrying 3 KB each, so that its insert's
    // commit (one commit, WAL pages and the fsync) takes long enough to be seen from outside.
    const filler = Buffer.alloc(3 * 1024, 7);
    const submitted = await client.submitMany([
      { type: ECHO, input: pack(EchoRequest, { text: 'early' }) },
      ...Array.from({ length: 999 }, () => ({ type: ECHO, input: pack(EchoRequest, { text: 'later', payload: filler }), options: { delayMs: 3_600_000 } })),
    ]);
    const id = submitted[0]!.id;
    const received = await worker.waitForLine((line) => line.received === id);
    const at = BigInt(received.at as string);
    const commit = await waitFor(() => commits.get(id), { what: 'the commit of the insert' });
    // Started by the worker before the server's thread came out of the commit that stored it.
    expect(at < commit.end, `worker started ${Number(at - commit.end) / 1e6} ms after the commit (${Number(commit.end - commit.start) / 1e6} ms) ended`).toBe(true);
    expect((await client.result(id)).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
  });
});
