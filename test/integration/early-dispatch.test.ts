import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { ProtocolVersion, WorkerServiceDefinition, type ConnectRequest, type ConnectResponse } from '../../gen/ts/taskwire/v1/worker_service.js';
import { pack, type TaskwireClient } from '../../src/client/index.js';
import { Code, diskFull, TaskwireError } from '../../src/errors.js';
import { createRpcChannel, createRpcClient, Outbox } from '../../src/rpc/index.js';
import { createPostgresStore, createSqliteStore, type Store } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { deferred, waitFor } from '../helpers/wait.js';

/**
 * Direct dispatch sends a task to its worker before the task's insert
 * commits (Dispatcher.insert). Through the real server, on SQLite and on
 * PostgreSQL, with inserts held back by the test: the worker has the task
 * while its insert waits; its result waits for the insert and is refused if
 * the task was never stored; a task with an idempotency key waits for its
 * commit; a worker gone meanwhile has its attempt failed once the task is
 * stored. How early it is on a real disk: early-dispatch-timing.test.ts.
 */
const ECHO = '/demo.v1.DemoService/Echo';
const S = TaskState;
const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `early_${process.pid}_${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'taskwire-early-'));
const schemas: string[] = [];
let n = 0;

type Stack = Awaited<ReturnType<typeof startStack>>;
let stack: Stack | undefined;
let opened: Store | undefined;
const streams: Array<() => void> = [];
afterEach(async () => {
  for (const end of streams.splice(0)) end();
  await stack?.stop();
  await opened?.close();
  stack = undefined;
  opened = undefined;
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

/**
 * A real store whose inserts the test holds: while `hold()` is in force an
 * insert waits (`waiting` resolves when one does) until `release()`, or fails
 * with `fail(error)`, before it reaches the database.
 */
function holding(store: Store) {
  let gate: ReturnType<typeof deferred<Error | undefined>> | undefined;
  let waiting = deferred();
  const held: Store = {
    ...store,
    async insert(tasks) {
      const current = gate;
      if (current !== undefined) {
        waiting.resolve();
        const error = await current.promise;
        if (error !== undefined) throw error;
      }
      return store.insert(tasks);
    },
  };
  return {
    store: held,
    hold() {
      gate = deferred<Error | undefined>();
      waiting = deferred();
    },
    /** Resolves once an insert waits on the hold. */
    waiting: () => waiting.promise,
    release() {
      gate?.resolve(undefined);
      gate = undefined;
    },
    fail(error: Error) {
      gate?.resolve(error);
      gate = undefined;
    },
  };
}

async function open(kind: 'sqlite' | 'postgres'): Promise<Store> {
  const name = `${prefix}_${n++}`;
  if (kind === 'sqlite') return createSqliteStore({ path: join(dir, `${name}.db`) });
  schemas.push(name);
  return createPostgresStore({ connectionString: POSTGRES_URL, schema: name });
}

/** A worker speaking the protocol by hand, one message at a time. */
function rawWorker(address: string, workerId = 'raw') {
  const channel = createRpcChannel(address);
  const rpc = createRpcClient(WorkerServiceDefinition, channel);
  const out = new Outbox<Partial<ConnectRequest>>((messages) => messages.at(-1)!);
  out.push({ hello: { workerId, taskTypes: [ECHO], slots: 4, labels: {}, version: 'test', protocol: ProtocolVersion.PROTOCOL_VERSION_1, resume: [] } });
  streams.push(() => {
    out.end();
    channel.close();
  });
  const responses = rpc.connect(out)[Symbol.asyncIterator]();
  return {
    send: (message: Partial<ConnectRequest>) => out.push(message),
    /** Reads until a response has `pick` true; returns it. */
    async until(pick: (r: ConnectResponse) => boolean): Promise<ConnectResponse> {
      for (let i = 0; i < 50; i++) {
        const result = await responses.next();
        if (result.done) throw new Error('the stream ended');
        if (pick(result.value)) return result.value;
      }
      throw new Error('no such response within 50 messages');
    },
    end() {
      out.end();
      channel.close();
    },
  };
}

type Worker = ReturnType<typeof rawWorker>;

const complete = (worker: Worker, taskId: string, text: string) =>
  worker.send({ completes: [{ taskId, attempt: 1, output: pack(EchoResponse, { text }) }], credit: 1 });

/**
 * A server on `store` and a raw worker, warmed up: one task run through it,
 * so the dispatcher knows nothing waits and leases the next task in its insert.
 */
async function started(kind: 'sqlite' | 'postgres') {
  opened = await open(kind);
  const held = holding(opened);
  stack = await startStack({ store: held.store });
  const worker = rawWorker(stack.address);
  await worker.until((r) => r.welcome !== undefined);
  const client = stack.client();
  const warm = await client.submit(ECHO, pack(EchoRequest, { text: 'warm' }));
  await worker.until((r) => r.assignments.some((a) => a.taskId === warm.id));
  complete(worker, warm.id, 'warm');
  await client.result(warm.id);
  return { stack, held, worker, client };
}

/** Submits without waiting; the returned promise settles with the submit. */
function submitting(client: TaskwireClient, text: string, options = {}) {
  return client.submit(ECHO, pack(EchoRequest, { text }), options).then(
    (submitted) => ({ submitted }),
    (error: unknown) => ({ error }),
  );
}

describe.each(['sqlite', 'postgres'] as const)('early dispatch on %s', (kind) => {
  it('gives the worker its task while the insert waits, and applies a result sent meanwhile only after the insert', async () => {
    const { stack, held, worker, client } = await started(kind);
    held.hold();
    const submit = submitting(client, 'early');
    await held.waiting();
    const assignment = (await worker.until((r) => r.assignments.length > 0)).assignments[0]!;
    expect(assignment).toMatchObject({ type: ECHO, attempt: 1 });
    const id = assignment.taskId;
    expect(await opened!.get(id)).toBeUndefined();
    // The worker finishes before the task is stored. Written now, the result would find no task
    // and be rejected as stale; it waits for the insert instead.
    complete(worker, id, 'done early');
    const acked = worker.until((r) => r.acknowledged.some((a) => a.taskId === id));
    await waitFor(() => stack.server.workers()[0]?.running === 0, { what: 'the result to reach the server' });
    held.release();
    const { submitted } = (await submit) as { submitted: { id: string } };
    expect(submitted.id).toBe(id);
    expect((await acked).rejections).toEqual([]);
    const outcome = await client.result(id);
    expect(outcome.state).toBe(S.TASK_STATE_SUCCEEDED);
    expect(EchoResponse.decode(outcome.output!.value).text).toBe('done early');
    expect(stack.server.counters).toMatchObject({ refusedResults: 0, staleResults: 0 });
  });

  it('refuses the result of a task whose insert failed, tells the worker to stop, and the submitter sees the error', async () => {
    const { stack, held, worker, client } = await started(kind);
    held.hold();
    const submit = submitting(client, 'doomed');
    await held.waiting();
    const id = (await worker.until((r) => r.assignments.length > 0)).assignments[0]!.taskId;
    complete(worker, id, 'never stored');
    // The result has reached the server (the session no longer counts the attempt as running) and waits.
    await waitFor(() => stack.server.workers()[0]?.running === 0, { what: 'the result to reach the server' });
    held.fail(diskFull('the test store'));

    const { error } = (await submit) as { error: unknown };
    expect(error).toBeInstanceOf(TaskwireError);
    expect((error as TaskwireError).code).toBe(Code.RESOURCE_EXHAUSTED);
    const refused = await worker.until((r) => r.rejections.length > 0);
    expect(refused.rejections).toEqual([
      { taskId: id, attempt: 1, reason: `complete refused: task ${id} was never stored (its submit failed), so attempt 1 has nothing to record` },
    ]);
    expect(stack.server.counters.refusedResults).toBe(1);
    await expect(client.get(id)).rejects.toMatchObject({ code: Code.NOT_FOUND });
  });

  it('cancels the attempt of a task whose insert failed while the worker still runs it', async () => {
    const { held, worker, client } = await started(kind);
    held.hold();
    const submit = submitting(client, 'doomed');
    await held.waiting();
    const id = (await worker.until((r) => r.assignments.length > 0)).assignments[0]!.taskId;
    held.fail(diskFull('the test store'));
    const cancel = (await worker.until((r) => r.cancels.length > 0)).cancels[0]!;
    expect(cancel).toMatchObject({ taskId: id, attempt: 1, reason: expect.stringContaining('the disk is full') });
    expect((await submit) as object).toHaveProperty('error');
  });

  it('sends a task with an idempotency key only after its insert commits', async () => {
    const { held, worker, client } = await started(kind);
    held.hold();
    const submit = submitting(client, 'keyed', { idempotencyKey: 'once' });
    await held.waiting();
    // A barrier: the server answers a result for no task at once, after anything it sent before.
    // A task sent before its insert would have been sent before the insert began to wait.
    worker.send({ completes: [{ taskId: 'no-such-task', attempt: 1, output: pack(EchoResponse, {}) }] });
    const before: string[] = [];
    await worker.until((r) => {
      before.push(...r.assignments.map((a) => a.taskId));
      return r.rejections.length > 0;
    });
    expect(before).toEqual([]);
    held.release();
    const { submitted } = (await submit) as { submitted: { id: string } };
    const after = await worker.until((r) => r.assignments.length > 0);
    expect(after.assignments.map((a) => a.taskId)).toEqual([submitted.id]);
  });

  it('fails the attempt of a worker gone before the insert committed, once the task is stored', async () => {
    const { stack, held, worker, client } = await started(kind);
    held.hold();
    const submit = submitting(client, 'orphan');
    await held.waiting();
    const id = (await worker.until((r) => r.assignments.length > 0)).assignments[0]!.taskId;
    worker.end();
    // The server sees the stream end while the insert still waits.
    await waitFor(() => stack.server.workers().length === 0, { what: 'the server to see the worker gone' });
    held.release();
    await submit;
    // Not left leased to the dead session until its lease ran out: failed as "worker lost", to be retried.
    const task = await waitForFailure(client, id);
    expect(task.errors[0]).toMatchObject({ attempt: 1, message: expect.stringContaining('worker raw lost') });
    expect(stack.server.counters.workersLost).toBe(1);
  });
});

/** The task once its first attempt failed (it then waits for its retry). */
function waitForFailure(client: TaskwireClient, id: string) {
  return waitFor(
    async () => {
      const task = await client.get(id);
      return task.errors.length > 0 && task;
    },
    { what: `the first attempt of ${id} to fail` },
  );
}
