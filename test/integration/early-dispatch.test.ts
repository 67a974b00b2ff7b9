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
 * while its insert waits; its result is written after the insert, is
 * acknowledged only once the insert committed, and is refused if the task was
 * never stored; a task with an idempotency key waits for its commit; a worker
 * gone meanwhile has its attempt failed once the task is stored. How early it
 * is on a real disk: early-dispatch-timing.test.ts; a result sharing its
 * insert's commit: shared-commit.test.ts.
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
 * A real store whose next insert the test holds. `holdCommit()`: the insert is
 * written when called, in its place among the store's writes, and only its
 * commit waits until `release()` (SQLite: a hold on the commit, `Store.hold`,
 * the store opened with a long linger; PostgreSQL: a lock on the tasks table
 * taken from another connection, so the insert waits inside its
 * transaction). `holdFailing()`: the insert waits without reaching the
 * database, then fails with `fail(error)`. `waiting` resolves once an insert
 * is held.
 */
function holding(store: Store, kind: 'sqlite' | 'postgres', schema: string) {
  let mode: 'commit' | 'failing' | undefined;
  let failing = deferred<Error>();
  let waiting = deferred();
  let release: (() => void) | undefined;
  const held: Store = {
    ...store,
    insert(tasks) {
      const current = mode;
      mode = undefined;
      if (current === 'failing') {
        waiting.resolve();
        return failing.promise.then((error) => Promise.reject(error));
      }
      const inserted = store.insert(tasks);
      if (current === 'commit') {
        if (kind === 'sqlite') release = store.hold!(0);
        waiting.resolve();
      }
      return inserted;
    },
  };
  return {
    store: held,
    async holdCommit() {
      mode = 'commit';
      waiting = deferred();
      if (kind === 'postgres') {
        const lock = new pg.Client({ connectionString: POSTGRES_URL });
        await lock.connect();
        await lock.query(`BEGIN; LOCK TABLE ${schema}.tasks IN SHARE MODE`);
        release = () => void lock.query('COMMIT').finally(() => lock.end());
      }
    },
    holdFailing() {
      mode = 'failing';
      failing = deferred<Error>();
      waiting = deferred();
    },
    /** Resolves once an insert is held. */
    waiting: () => waiting.promise,
    release() {
      release?.();
      release = undefined;
    },
    fail(error: Error) {
      failing.resolve(error);
    },
  };
}

async function open(kind: 'sqlite' | 'postgres'): Promise<{ store: Store; schema: string }> {
  const name = `${prefix}_${n++}`;
  // A linger long enough that a commit the test holds waits for its release, however slow the machine.
  if (kind === 'sqlite') return { store: createSqliteStore({ path: join(dir, `${name}.db`), lingerMs: 60_000 }), schema: name };
  schemas.push(name);
  return { store: await createPostgresStore({ connectionString: POSTGRES_URL, schema: name }), schema: name };
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
  const { store, schema } = await open(kind);
  opened = store;
  const held = holding(store, kind, schema);
  stack = await startStack({ store: held.store });
  const worker = rawWorker(stack.address);
  await worker.until((r) => r.welcome !== undefined);
  const client = stack.client();
  // Not awaited: the submit may be answered only with its result (which shares its commit).
  const warm = client.submit(ECHO, pack(EchoRequest, { text: 'warm' }));
  const assignment = (await worker.until((r) => r.assignments.length > 0)).assignments[0]!;
  complete(worker, assignment.taskId, 'warm');
  expect((await warm).id).toBe(assignment.taskId);
  await client.result(assignment.taskId);
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
    await held.holdCommit();
    const submit = submitting(client, 'early');
    await held.waiting();
    const assignment = (await worker.until((r) => r.assignments.length > 0)).assignments[0]!;
    expect(assignment).toMatchObject({ type: ECHO, attempt: 1 });
    const id = assignment.taskId;
    expect(await opened!.get(id)).toBeUndefined();
    // The worker finishes before the task is stored. Its result is written after the insert,
    // in the store's order of writes, and acknowledged only once the insert committed.
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
    held.holdFailing();
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
    held.holdFailing();
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
    await held.holdCommit();
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

  it("answers an idempotent resubmit whose task ends in the resubmit's own commit", async () => {
    const { stack, held, worker, client } = await started(kind);
    const first = await client.submit(ECHO, pack(EchoRequest, { text: 'keyed' }), { idempotencyKey: 'again' });
    await worker.until((r) => r.assignments.some((a) => a.taskId === first.id));
    // The resubmit's insert (which finds the task) waits to commit; the worker's result is written after it.
    await held.holdCommit();
    const again = client.run(ECHO, pack(EchoRequest, { text: 'keyed' }), { idempotencyKey: 'again' });
    await held.waiting();
    complete(worker, first.id, 'done');
    await waitFor(() => stack.server.workers()[0]?.running === 0, { what: 'the result to reach the server' });
    held.release();
    // On SQLite both share one commit: the task's end is published before the resubmit is answered.
    const outcome = await again;
    expect(outcome.taskId).toBe(first.id);
    expect(outcome.state).toBe(S.TASK_STATE_SUCCEEDED);
  });

  it('fails the attempt of a worker gone before the insert committed, once the task is stored', async () => {
    const { stack, held, worker, client } = await started(kind);
    await held.holdCommit();
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
