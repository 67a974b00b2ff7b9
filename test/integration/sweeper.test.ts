import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { createSqliteStore, type Store } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { deferred, waitFor } from '../helpers/wait.js';

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
let store: Store | undefined;
afterEach(async () => {
  await stack?.stop();
  await store?.close();
  stack = undefined;
  store = undefined;
});

describe('the sweeper and a lease that names a live session', () => {
  it('renews only an attempt its live session owns: one it does not own is handed back once its lease runs out, not kept RUNNING forever', async () => {
    stack = await startStack({ leaseMs: 500, sweepMs: 50 });
    await stack.worker({ concurrency: 1 });
    const client = stack.client();
    const { id } = await client.submit('/demo.v1.DemoService/Sleep', pack(SleepRequest, { durationMs: 1_000 }));
    const running = await waitFor(async () => {
      const task = await client.get(id);
      return task.state === TaskState.TASK_STATE_RUNNING && task;
    }, { what: 'the task to run' });
    expect(running.attempt).toBe(1);

    // The store now says the live session holds attempt 2, whose lease has run out, while the
    // session holds attempt 1 (as when a write the server saw fail had in fact committed).
    const db = new Database(join(stack.dir, 'tasks.db'));
    try {
      const changed = db.prepare('UPDATE tasks SET attempt = 2, lease_expires_at = ? WHERE id = ? AND state = ?').run(Date.now() - 1, id, TaskState.TASK_STATE_RUNNING).changes;
      expect(changed).toBe(1);
    } finally {
      db.close();
    }

    // Attempt 1's result is refused as stale; attempt 2 is handed back when the start's grace for
    // reconnecting workers ends (lease + 5 s), and runs again as attempt 3 on the same worker.
    const outcome = await client.result(id, { signal: AbortSignal.timeout(20_000) });
    expect([outcome.state, outcome.attempt]).toEqual([TaskState.TASK_STATE_SUCCEEDED, 3]);
    expect(stack.server.counters.leasesExpired).toBe(1);
  }, 30_000);

  it('keeps the lease of an attempt whose result is being written: a store that refuses the result for several lease periods costs no second run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskwire-sweeper-'));
    const sqlite = createSqliteStore({ path: join(dir, 'tasks.db') });
    // The results fail while `refusing` is set, as on a full disk; everything else is written.
    let refusing = false;
    const refused = deferred();
    store = {
      ...sqlite,
      complete(items, now) {
        if (!refusing) return sqlite.complete(items, now);
        refused.resolve();
        return Promise.reject(new Error('disk I/O error'));
      },
      async close() {
        await sqlite.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
    const started = Date.now();
    stack = await startStack({ store, leaseMs: 500, sweepMs: 50 });
    await stack.worker({ concurrency: 1 });
    const client = stack.client();
    // Finishes after the start's grace (lease + 5 s), when an expired lease no live session owns is handed back.
    const { id } = await client.submit('/demo.v1.DemoService/Sleep', pack(SleepRequest, { durationMs: 6_000 }));
    await waitFor(async () => (await client.get(id)).state === TaskState.TASK_STATE_RUNNING, { what: 'the task to run' });
    refusing = true;
    await refused.promise;
    expect(Date.now() - started).toBeGreaterThan(5_500);
    // Refused for six lease periods: the lease would run out three times over unless renewed.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await client.get(id)).state).toBe(TaskState.TASK_STATE_RUNNING);
    refusing = false;
    const outcome = await client.result(id, { signal: AbortSignal.timeout(15_000) });
    expect([outcome.state, outcome.attempt]).toEqual([TaskState.TASK_STATE_SUCCEEDED, 1]);
    expect(stack.server.counters.leasesExpired).toBe(0);
  }, 40_000);
});
