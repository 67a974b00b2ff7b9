import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EchoRequest, FailRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState, type Task } from '../../gen/ts/taskwire/v1/task.js';
import { TaskServiceDefinition, type DeepPartial, type SubmitTaskRequest } from '../../gen/ts/taskwire/v1/task_service.js';
import { BULK_LIMITS } from '../../src/broker/index.js';
import { pack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient, type RpcClient } from '../../src/rpc/index.js';
import { createPostgresStore, createSqliteStore, type Store } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const dir = mkdtempSync(join(tmpdir(), 'taskwire-bulk-'));
let files = 0;

const S = TaskState;
const ECHO = '/demo.v1.DemoService/Echo';
const FAIL = '/demo.v1.DemoService/Fail';
const SLEEP = '/demo.v1.DemoService/Sleep';
const schemas: string[] = [];

afterAll(async () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
  rmSync(dir, { recursive: true, force: true });
});

/** A store, and a way to delete its rows from outside, as an operator's delete or a retention cleaner would. */
type Opened = { store: Store; remove(ids: readonly string[]): Promise<void> };
const stores: Array<[string, () => Promise<Opened>]> = [
  [
    'sqlite',
    async () => {
      const path = join(dir, `bulk-${files++}.db`);
      const store = createSqliteStore({ path });
      return {
        store,
        async remove(ids) {
          const db = new Database(path);
          try {
            db.prepare(`DELETE FROM tasks WHERE id IN (${ids.map(() => '?').join(', ')})`).run(...ids);
          } finally {
            db.close();
          }
        },
      };
    },
  ],
  [
    'postgres',
    async () => {
      const schema = `bulk_${process.pid}_${Date.now()}_${schemas.length}`;
      schemas.push(schema);
      const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
      return {
        store,
        async remove(ids) {
          const client = new pg.Client({ connectionString: POSTGRES_URL });
          await client.connect();
          try {
            await client.query(`DELETE FROM ${schema}.tasks WHERE id = ANY($1)`, [ids]);
          } finally {
            await client.end();
          }
        },
      };
    },
  ],
];

describe.each(stores)('bulk actions and list filters through the server (%s)', (_name, openStore) => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let rpc: RpcClient<typeof TaskServiceDefinition>;
  let commits: number[];
  let store: Store;
  let remove: Opened['remove'];
  let closeChannel: () => void;

  beforeEach(async () => {
    ({ store, remove } = await openStore());
    stack = await startStack({ store });
    commits = [];
    const channel = createRpcChannel(stack.address);
    rpc = createRpcClient(TaskServiceDefinition, channel);
    closeChannel = () => channel.close();
  });
  afterEach(async () => {
    closeChannel();
    await stack.stop();
  });

  const submit = async (requests: DeepPartial<SubmitTaskRequest>[]): Promise<Task[]> => {
    const tasks: Task[] = [];
    for (let i = 0; i < requests.length; i += 1000) {
      const { results } = await rpc.submitTasks({ tasks: requests.slice(i, i + 1000) });
      tasks.push(...results.map((r) => r.task!));
    }
    return tasks;
  };
  const failing = (queue: string, code: number) => ({
    type: FAIL,
    input: pack(FailRequest, { failAttempts: 1, code, permanent: true }),
    options: { queue, maxAttempts: 1 },
  });
  const counts = async (queue: string) => (await rpc.getQueueStats({ queue })).queues[0];
  /** Counts read from the tasks themselves, to check the broker's maintained counts against. */
  const listed = async (queue: string) => {
    const byState: Partial<Record<TaskState, number>> = {};
    let pageToken = '';
    do {
      const page = await rpc.listTasks({ queue, pageSize: 1000, pageToken });
      for (const task of page.tasks) byState[task.state] = (byState[task.state] ?? 0) + 1;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return byState;
  };

  it('retries 250 failed tasks by filter, after a dry run, in bounded batches: they run and succeed', async () => {
    await stack.worker({ concurrency: 16 });
    await submit([...Array.from({ length: 250 }, () => failing('bulk', 14)), ...Array.from({ length: 20 }, () => failing('bulk', 3))]);
    await submit(Array.from({ length: 10 }, () => failing('elsewhere', 14)));
    await waitFor(async () => (await counts('bulk'))?.failed === 270 && (await counts('elsewhere'))?.failed === 10, {
      what: 'every task to fail once',
      timeoutMs: 30_000,
    });

    const filter = { queue: 'bulk', states: [S.TASK_STATE_FAILED], errorCode: 14 };
    expect(await rpc.retryTasks({ filter, dryRun: true })).toEqual({ count: 250, more: false });
    expect(await rpc.retryTasks({ filter, dryRun: true, limit: 100 })).toEqual({ count: 100, more: true });
    expect((await counts('bulk'))?.failed).toBe(270); // a dry run changes nothing

    store.onCommit((_seconds, writes) => commits.push(writes));
    expect(await rpc.retryTasks({ filter, limit: 120 })).toEqual({ count: 120, more: true });
    expect(await rpc.retryTasks({ filter })).toEqual({ count: 130, more: false });
    // Nothing took one commit for all of them: batches of BULK_BATCH, with the hot path's writes between.
    expect(Math.max(...commits)).toBeLessThan(200);

    await waitFor(async () => (await counts('bulk'))?.succeeded === 250, { what: 'the retried tasks to succeed', timeoutMs: 30_000 });
    const after = await counts('bulk');
    expect(after).toMatchObject({ failed: 20, succeeded: 250, queued: 0, running: 0 });
    expect(await listed('bulk')).toEqual({ [S.TASK_STATE_FAILED]: 20, [S.TASK_STATE_SUCCEEDED]: 250 });
    expect((await counts('elsewhere'))?.failed).toBe(10);
    expect(await rpc.retryTasks({ filter })).toEqual({ count: 0, more: false });
  });

  it('cancels queued tasks by type while other tasks keep running; a running one matched is told through its signal', async () => {
    const started = new Map<string, ReturnType<typeof deferred<void>>>();
    const aborted = new Map<string, ReturnType<typeof deferred<void>>>();
    const release = deferred<void>();
    await stack.worker({ concurrency: 2 }, (defaults) => ({
      ...defaults,
      async sleep(_request, ctx) {
        started.get(ctx.taskId)?.resolve(undefined);
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.get(ctx.taskId)?.resolve(undefined);
            resolve();
          });
          void release.promise.then(() => resolve());
        });
        return { sleptMs: 1 };
      },
    }));
    const sleeper = (batch: string) => ({ type: SLEEP, input: pack(SleepRequest, { durationMs: 1 }), options: { labels: { batch } } });
    const [x, y] = await submit([sleeper('x'), sleeper('y')]);
    for (const task of [x!, y!]) {
      started.set(task.id, deferred());
      aborted.set(task.id, deferred());
    }
    await waitFor(async () => (await counts('default'))?.running === 2, { what: 'both sleepers to run' });
    const echoes = await submit(Array.from({ length: 30 }, () => ({ type: ECHO, input: pack(EchoRequest, { text: 'e' }) })));
    await waitFor(async () => (await counts('default'))?.queued === 30, { what: 'the echoes to wait for a slot' });

    expect(await rpc.cancelTasks({ filter: { type: ECHO, states: [S.TASK_STATE_QUEUED] }, dryRun: true })).toEqual({ count: 30, more: false });
    expect(await rpc.cancelTasks({ filter: { type: ECHO, states: [S.TASK_STATE_QUEUED] }, reason: 'incident 42' })).toEqual({ count: 30, more: false });
    const cancelled = await rpc.getTask({ id: echoes[7]!.id });
    expect(cancelled.task).toMatchObject({ state: S.TASK_STATE_CANCELLED, cancelReason: 'incident 42' });
    expect(await counts('default')).toMatchObject({ running: 2, queued: 0, cancelled: 30 });

    // One running task by label: its handler's signal fires, the other goes on.
    expect(await rpc.cancelTasks({ filter: { labels: { batch: 'x' } } })).toEqual({ count: 1, more: false });
    await aborted.get(x!.id)!.promise;
    release.resolve(undefined);
    await waitFor(async () => (await rpc.getTask({ id: y!.id })).task?.state === S.TASK_STATE_SUCCEEDED, { what: 'y to finish' });
    expect((await rpc.getTask({ id: x!.id })).task?.state).toBe(S.TASK_STATE_CANCELLED);
    expect(await counts('default')).toMatchObject({ running: 0, succeeded: 1, cancelled: 31 });
    expect(await listed('default')).toEqual({ [S.TASK_STATE_SUCCEEDED]: 1, [S.TASK_STATE_CANCELLED]: 31 });
  });

  it('bounds each call: the limit, then more until none are left', async () => {
    await submit(Array.from({ length: 25 }, () => ({ type: ECHO, input: pack(EchoRequest, {}), options: { queue: 'idle' } })));
    const filter = { queue: 'idle' };
    expect(await rpc.cancelTasks({ filter, limit: 10 })).toEqual({ count: 10, more: true });
    expect(await rpc.cancelTasks({ filter, limit: 10 })).toEqual({ count: 10, more: true });
    expect(await rpc.cancelTasks({ filter, limit: 10 })).toEqual({ count: 5, more: false });
    expect(BULK_LIMITS).toEqual({ defaultLimit: 1000, maxLimit: 10_000 });
    expect((await rpc.listTasks({ queue: 'idle', states: [S.TASK_STATE_CANCELLED], pageSize: 100 })).tasks).toHaveLength(25);
  });

  it('lists with each filter and pages oldest first', async () => {
    const before = await submit([{ type: ECHO, input: pack(EchoRequest, {}), options: { queue: 'f', labels: { env: 'prod' } } }]);
    const firstCreated = before[0]!.createTime!;
    await waitFor(() => Date.now() > firstCreated.getTime(), { what: 'the clock to move' });
    const later = await submit(
      Array.from({ length: 5 }, (_, i) => ({ type: ECHO, input: pack(EchoRequest, {}), options: { queue: 'f', labels: { env: i % 2 ? 'prod' : 'dev' } } })),
    );
    await rpc.cancelTasks({ filter: { queue: 'f', labels: { env: 'dev' } } });
    const ids = (tasks: Task[]) => tasks.map((t) => t.id);
    const all = [before[0]!, ...later];
    expect(ids((await rpc.listTasks({ queue: 'f', order: 2 })).tasks)).toEqual(ids(all));
    expect(ids((await rpc.listTasks({ queue: 'f' })).tasks)).toEqual(ids(all).reverse());
    expect(ids((await rpc.listTasks({ queue: 'f', createdBefore: later[0]!.createTime })).tasks)).toEqual(ids(before));
    expect((await rpc.listTasks({ queue: 'f', createdSince: later[0]!.createTime })).tasks).toHaveLength(5);
    expect((await rpc.listTasks({ queue: 'f', labels: { env: 'prod' } })).tasks).toHaveLength(3);
    expect((await rpc.listTasks({ queue: 'f', states: [S.TASK_STATE_CANCELLED], finishedSince: firstCreated })).tasks).toHaveLength(3);
    expect((await rpc.listTasks({ queue: 'f', finishedBefore: firstCreated })).tasks).toHaveLength(0);
    let pageToken = '';
    const paged: Task[] = [];
    do {
      const page = await rpc.listTasks({ queue: 'f', order: 2, pageSize: 2, pageToken });
      paged.push(...page.tasks);
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    expect(ids(paged)).toEqual(ids(all));
  });

  it('pages stay stable, either order, while tasks are submitted and deleted meanwhile', async () => {
    const echo = () => ({ type: ECHO, input: pack(EchoRequest, {}), options: { queue: 'paging' } });
    for (const order of [1, 2]) {
      const before = await submit(Array.from({ length: 120 }, echo));
      const alive = before.map((t) => t.id);
      const deleted = new Set<string>();
      let churning = true;
      // Beside the listing, without waiting for it: submits, and deletes of the newest task and of random ones.
      const churn = (async () => {
        for (let round = 0; churning && round < 200; round++) {
          const [added] = await submit([echo()]);
          alive.push(added!.id);
          const victims = [alive.pop()!, ...alive.splice(Math.floor(Math.random() * alive.length), 1)];
          await remove(victims);
          for (const id of victims) deleted.add(id);
        }
      })();
      const seen: string[] = [];
      let pageToken = '';
      do {
        const page = await rpc.listTasks({ queue: 'paging', order, pageSize: 7, pageToken });
        seen.push(...page.tasks.map((t) => t.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      churning = false;
      await churn;

      expect(new Set(seen).size).toBe(seen.length);
      const index = new Map(before.map((t, i) => [t.id, i]));
      const survivors = before.filter((t) => !deleted.has(t.id)).map((t) => t.id);
      for (const id of survivors) expect(seen).toContain(id);
      const positions = seen.filter((id) => index.has(id)).map((id) => index.get(id)!);
      expect(positions).toEqual([...positions].sort((a, b) => (order === 2 ? a - b : b - a)));
      expect(deleted.size).toBeGreaterThan(0);
      const left = [...alive];
      if (left.length > 0) await remove(left);
    }
  });
});
