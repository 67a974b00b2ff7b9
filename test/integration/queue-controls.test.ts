import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, FailRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack, type TaskwireClient } from '../../src/client/index.js';
import { Code } from '../../src/errors.js';
import { createPostgresStore, createSqliteStore, type Store } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { deferred, waitFor } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const FAIL = '/demo.v1.DemoService/Fail';
const S = TaskState;
const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `qc_${process.pid}_${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'taskwire-queue-controls-'));
const schemas: string[] = [];
let n = 0;

type Stack = Awaited<ReturnType<typeof startStack>>;
let stacks: Stack[] = [];
afterEach(async () => {
  for (const stack of stacks.reverse()) await stack.stop();
  stacks = [];
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

/** Where a test's tasks live: a SQLite file, or a PostgreSQL schema; every server opened on it shares it. */
function storeOf(kind: 'sqlite' | 'postgres') {
  const name = `${prefix}_${n++}`;
  if (kind === 'postgres') schemas.push(name);
  return async () => {
    const stack = await startStack(
      kind === 'sqlite' ? { dbPath: join(dir, `${name}.db`) } : { store: await createPostgresStore({ connectionString: POSTGRES_URL, schema: name }) },
    );
    stacks.push(stack);
    return stack;
  };
}

async function codeOf(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as { code: Code; message: string },
  );
  expect(error).toBeDefined();
  return error!;
}

const echo = (client: TaskwireClient, queue: string, idempotencyKey?: string) =>
  client.submit(ECHO, pack(EchoRequest, { text: queue, payload: Buffer.alloc(0) }), { queue, ...(idempotencyKey ? { idempotencyKey } : {}) });

const statsOf = async (client: TaskwireClient, queue: string) => (await client.stats(queue))[0];

describe.each(['sqlite', 'postgres'] as const)('queue controls on %s, through the server', (kind) => {
  it('a paused queue takes submits and dispatches nothing while a worker waits; a resume runs them at once', async () => {
    const stack = await storeOf(kind)();
    await stack.worker();
    const client = stack.client();
    expect(await client.pauseQueue('held')).toBe(true);
    expect(await client.pauseQueue('held')).toBe(false);
    expect(await statsOf(client, 'held')).toMatchObject({ queue: 'held', paused: true, queued: 0 });

    const held = await Promise.all([0, 1, 2].map(() => echo(client, 'held')));
    // Submitted after the held tasks, same type: it runs only because the held ones may not.
    const free = await echo(client, 'free');
    expect((await client.result(free.id)).state).toBe(S.TASK_STATE_SUCCEEDED);
    for (const { id } of held) expect(await client.get(id)).toMatchObject({ state: S.TASK_STATE_QUEUED, attempt: 0 });
    expect(await statsOf(client, 'held')).toMatchObject({ paused: true, queued: 3, running: 0 });

    expect(await client.resumeQueue('held')).toBe(true);
    expect(await client.resumeQueue('held')).toBe(false);
    for (const { id } of held) expect((await client.result(id)).state).toBe(S.TASK_STATE_SUCCEEDED);
    expect(await statsOf(client, 'held')).toMatchObject({ paused: false, succeeded: 3, queued: 0 });
  });

  it('lets a running attempt finish when its queue is paused', async () => {
    const stack = await storeOf(kind)();
    const started = deferred();
    await stack.worker({}, (d) => ({
      ...d,
      async sleep(request, ctx) {
        started.resolve();
        return d.sleep(request, ctx);
      },
    }));
    const client = stack.client();
    const { id } = await client.submit(SLEEP, pack(SleepRequest, { durationMs: 300, steps: 0 }), { queue: 'q' });
    await started.promise;
    await client.pauseQueue('q');
    expect((await client.result(id)).state).toBe(S.TASK_STATE_SUCCEEDED);
  });

  it('keeps a pause across a restart, shown even for a queue with no tasks', async () => {
    const open = storeOf(kind);
    const first = await open();
    await first.client().pauseQueue('held');
    await first.stop();
    stacks = stacks.filter((stack) => stack !== first);

    const second = await open();
    await second.worker();
    const client = second.client();
    expect(await client.stats()).toEqual([expect.objectContaining({ queue: 'held', paused: true, queued: 0, succeeded: 0 })]);
    const held = await echo(client, 'held');
    const free = await echo(client, 'free');
    await client.result(free.id);
    expect((await client.get(held.id)).state).toBe(S.TASK_STATE_QUEUED);
    await client.resumeQueue('held');
    expect((await client.result(held.id)).state).toBe(S.TASK_STATE_SUCCEEDED);
  });

  it('deletes and purges finished tasks, keeping the counts right, and frees an idempotency key', async () => {
    const stack = await storeOf(kind)();
    await stack.worker();
    const client = stack.client();
    const done = await Promise.all([0, 1, 2].map((i) => echo(client, 'p', `key-${kind}-${i}`)));
    const failed = await client.submit(FAIL, pack(FailRequest, { message: 'no', failAttempts: 0, permanent: true }), { queue: 'p' });
    for (const { id } of [...done, failed]) await client.result(id);
    expect(await statsOf(client, 'p')).toMatchObject({ succeeded: 3, failed: 1 });

    await client.deleteTask(done[0]!.id);
    expect((await codeOf(client.get(done[0]!.id))).code).toBe(Code.NOT_FOUND);
    expect(await statsOf(client, 'p')).toMatchObject({ succeeded: 2, failed: 1 });
    expect((await codeOf(client.deleteTask(done[0]!.id))).code).toBe(Code.NOT_FOUND);
    // The key is free again: the same submit makes a new task.
    const again = await echo(client, 'p', `key-${kind}-0`);
    expect(again.existing).toBe(false);
    expect(again.id).not.toBe(done[0]!.id);
    await client.result(again.id);

    await client.pauseQueue('p');
    const waiting = await echo(client, 'p');
    const refused = await codeOf(client.deleteTask(waiting.id));
    expect(refused.code).toBe(Code.FAILED_PRECONDITION);
    expect(refused.message).toContain('QUEUED');

    expect(await client.purgeQueue('p', { states: [S.TASK_STATE_FAILED] })).toBe(1);
    expect(await client.purgeQueue('p', { finishedBefore: new Date(Date.now() - 3_600_000) })).toBe(0);
    expect(await client.purgeQueue('p')).toBe(3);
    expect(await statsOf(client, 'p')).toMatchObject({ succeeded: 0, failed: 0, queued: 1, paused: true });
    expect((await client.get(waiting.id)).state).toBe(S.TASK_STATE_QUEUED);
  });

  it('refuses bad input naming the field', async () => {
    const stack = await storeOf(kind)();
    const client = stack.client();
    for (const [call, field] of [
      [client.pauseQueue(''), 'queue is required'],
      [client.resumeQueue('no spaces'), 'queue "no spaces"'],
      [client.deleteTask(''), 'id is required'],
      [client.purgeQueue('p', { states: [S.TASK_STATE_QUEUED] }), 'states[0] is QUEUED'],
      [client.purgeQueue('p', { states: [42 as TaskState] }), 'states[0] is 42'],
    ] as const) {
      const error = await codeOf(call);
      expect(error.code).toBe(Code.INVALID_ARGUMENT);
      expect(error.message).toContain(field);
    }
  });
});

describe('a paused queue costs no claims', () => {
  it('submits to a paused queue do not send the dispatcher looking for work', async () => {
    const store = createSqliteStore({ path: join(dir, `${prefix}_claims.db`) });
    let claims = 0;
    const counted: Store = { ...store, claim: (request) => (claims++, store.claim(request)) };
    const stack = await startStack({ store: counted });
    stacks.push(stack);
    await stack.worker();
    const client = stack.client();
    await client.pauseQueue('held');
    const before = claims;
    for (let i = 0; i < 20; i++) await echo(client, 'held');
    await client.result((await echo(client, 'free')).id);
    // Without the pause each submit would wake the idle worker's claim; at most the 5 s recheck may run one.
    expect(claims - before).toBeLessThanOrEqual(2);
    await client.resumeQueue('held');
    await waitFor(async () => (await statsOf(client, 'held'))?.succeeded === 20, { what: 'the held tasks to run after the resume' });
  });
});

describe('queue controls across PostgreSQL replicas', () => {
  it('replicas see each other’s pause, resume, deletions and workers', async () => {
    const open = storeOf('postgres');
    const a = await open();
    const b = await open();
    const worker = await b.worker();
    const clientA = a.client();
    const clientB = b.client();

    // B announces its sessions in the store as they connect: A lists them a moment later.
    const workers = await waitFor(async () => {
      const listed = await clientA.workers();
      return listed.length > 0 && listed;
    }, { what: 'replica A to list the worker connected to B' });
    expect(workers).toEqual([expect.objectContaining({ workerId: worker.workerId, replica: b.server.replica })]);
    expect(b.server.replica).not.toBe(a.server.replica);

    await clientA.pauseQueue('held');
    await waitFor(async () => (await statsOf(clientB, 'held'))?.paused, { what: 'replica B to hear the pause' });
    const held = await echo(clientB, 'held');
    const free = await echo(clientB, 'free');
    await clientB.result(free.id);
    expect((await clientB.get(held.id)).state).toBe(S.TASK_STATE_QUEUED);

    await clientA.resumeQueue('held');
    expect((await clientB.result(held.id)).state).toBe(S.TASK_STATE_SUCCEEDED);

    await clientA.deleteTask(held.id);
    await waitFor(async () => (await statsOf(clientB, 'held'))?.succeeded === 0, { what: 'replica B to count the deletion' });

    await worker.stop();
    await waitFor(async () => (await clientA.workers()).length === 0, { what: 'the worker to leave replica A’s list' });
  });
});
