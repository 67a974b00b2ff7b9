import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServiceDefinition, EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { createSqliteStore, type Store, type TaskEvent } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';

/**
 * A task sent to its worker before its insert commits can have its result
 * written in that same commit: the store holds a quiet commit back for an
 * attempt whose type usually answers quickly (Dispatcher.insert, Store.hold).
 * Through the real server, a real worker and a real SQLite file. The store's
 * linger is long here, so every held commit waits for its result whatever
 * the machine's speed, and a caller whose follow missed an outcome published
 * in its own insert's commit would wait for ever.
 */
const ECHO = '/demo.v1.DemoService/Echo';
const S = TaskState;
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** A SQLite store with the given linger that records each commit's events and every hold asked of it. */
function recorded(lingerMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-shared-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const base = createSqliteStore({ path: join(dir, 'tasks.db'), lingerMs });
  cleanup.push(() => base.close());
  const commits: TaskEvent[][] = [];
  base.subscribe((events) => commits.push([...events]));
  const holds: Array<{ expectMs: number; held: boolean }> = [];
  const store: Store = {
    ...base,
    hold(expectMs) {
      const release = base.hold!(expectMs);
      holds.push({ expectMs, held: release !== undefined });
      return release;
    },
  };
  /** The commit that inserted the task. */
  const insertOf = (id: string) => commits.find((events) => events.some((e) => e.id === id && e.previous === S.TASK_STATE_UNSPECIFIED));
  return { store, commits, holds, insertOf };
}

async function started(lingerMs: number) {
  const recording = recorded(lingerMs);
  const stack = await startStack({ store: recording.store });
  cleanup.push(() => stack.stop());
  await stack.worker();
  const client = stack.client();
  // Once a task has run, the dispatcher knows nothing waits and leases the next in its insert.
  await client.run(ECHO, pack(EchoRequest, { text: 'warm' }));
  return { ...recording, stack, client };
}

describe('a result that shares its insert commit', () => {
  it('reaches run(), a typed call() and a gateway call, each task in one commit', async () => {
    const { stack, client, commits, insertOf, holds } = await started(60_000);

    const ran = await client.run(ECHO, pack(EchoRequest, { text: 'run' }));
    const called = await client.service(DemoServiceDefinition).echo.call({ text: 'call' });
    const channel = createRpcChannel(stack.address);
    cleanup.push(() => channel.close());
    const answered = await createRpcClient(DemoServiceDefinition, channel).echo({ text: 'gateway' });
    expect(ran.state).toBe(S.TASK_STATE_SUCCEEDED);
    expect(called.text).toBe('call');
    expect(answered.text).toBe('gateway');

    // The tasks in the order they were inserted: the warm-up, then run, call and the gateway's.
    const inserted = commits.flat().filter((e) => e.previous === S.TASK_STATE_UNSPECIFIED).map((e) => e.id);
    expect(inserted).toHaveLength(4);
    expect(inserted[1]).toBe(ran.taskId);
    for (const id of inserted.slice(1)) {
      expect(insertOf(id)!.filter((e) => e.id === id).map((e) => e.state), `task ${id}`).toEqual([S.TASK_STATE_RUNNING, S.TASK_STATE_SUCCEEDED]);
    }
    expect(holds.slice(-3)).toEqual([
      { expectMs: expect.any(Number), held: true },
      { expectMs: expect.any(Number), held: true },
      { expectMs: expect.any(Number), held: true },
    ]);
  });

  it('stops holding the commits of a type whose attempts take longer than the linger', async () => {
    const { client, commits, insertOf, holds } = await started(20);
    const sleep = client.service(DemoServiceDefinition).sleep;
    await sleep.call({ durationMs: 100 });
    await sleep.call({ durationMs: 100 });
    const inserted = commits.flat().filter((e) => e.type === '/demo.v1.DemoService/Sleep' && e.previous === S.TASK_STATE_UNSPECIFIED);
    expect(inserted).toHaveLength(2);
    // The first was held (a type not seen yet is assumed quick) and committed without its result
    // once the linger ran out; the second's type had taught the dispatcher it takes 100 ms.
    const [first, second] = holds.slice(-2);
    expect(first).toEqual({ expectMs: 0, held: true });
    expect(second!.expectMs).toBeGreaterThanOrEqual(100);
    expect(second!.held).toBe(false);
    for (const { id } of inserted) expect(insertOf(id)!.filter((e) => e.id === id).map((e) => e.state)).toEqual([S.TASK_STATE_RUNNING]);
  });
});
