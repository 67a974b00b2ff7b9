import * as grpc from '@grpc/grpc-js';
import { isAbortError } from 'abort-controller-x';
import fc from 'fast-check';
import { ClientError, Status } from 'nice-grpc';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { ScheduleServiceDefinition } from '../../gen/ts/taskwire/v1/schedule_service.js';
import { ProtocolVersion, WorkerServiceDefinition, type ConnectRequest } from '../../gen/ts/taskwire/v1/worker_service.js';
import { pack, unpack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient, Outbox } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';

/**
 * Hostile input, generated: random and mutated messages on every RPC and on
 * the Connect and Session streams. The server must answer each with a proper
 * status (never crash, never UNKNOWN), keep serving, and keep the store
 * consistent; real work submitted alongside must still complete correctly.
 */
const ECHO = '/demo.v1.DemoService/Echo';
const TYPES = [ECHO, '/demo.v1.DemoService/Sleep', '/demo.v1.DemoService/Fail', '/nope.v1.Nope/Do', '', 'x'.repeat(5000)];
const ALLOWED = new Set([
  Status.OK,
  Status.INVALID_ARGUMENT,
  Status.NOT_FOUND,
  Status.FAILED_PRECONDITION,
  Status.RESOURCE_EXHAUSTED,
  Status.DEADLINE_EXCEEDED,
  Status.CANCELLED,
  Status.UNIMPLEMENTED,
]);

let stack: Awaited<ReturnType<typeof startStack>>;
let channel: ReturnType<typeof createRpcChannel>;
let inputs = 0;

beforeAll(async () => {
  stack = await startStack({ maxWatchers: 50, leaseMs: 1_000 });
  await stack.worker({ workerId: 'honest', concurrency: 8 });
  channel = createRpcChannel(stack.address);
});
afterAll(async () => {
  channel.close();
  await stack.stop();
});

const anyInput = fc.oneof(
  fc.constant(pack(EchoRequest, { text: 'ok' })),
  fc.record({ typeUrl: fc.oneof(fc.constant('type.googleapis.com/demo.v1.EchoRequest'), fc.string()), value: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) }),
);
const number = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 2 ** 31 - 1, -(2 ** 31)));
const duration = fc.record({ seconds: fc.integer({ min: -1e6, max: 1e9 }), nanos: fc.integer({ min: -1e9, max: 1e9 }) });
const options = fc.record(
  {
    queue: fc.oneof(fc.constant(''), fc.string({ maxLength: 200 })),
    priority: number,
    maxAttempts: fc.nat(),
    delay: duration,
    executionTimeout: duration,
    queueTimeout: duration,
    idempotencyKey: fc.oneof(fc.constant(''), fc.string({ maxLength: 400 })),
    labels: fc.dictionary(fc.string({ maxLength: 80 }), fc.string({ maxLength: 300 }), { maxKeys: 40 }),
    backoff: fc.record({ initial: duration, max: duration, multiplier: fc.double(), jitter: fc.double() }, { requiredKeys: [] }),
    concurrencyKey: fc.oneof(fc.constantFrom('', 'k1', 'k2'), fc.string({ maxLength: 300 })),
    concurrencyLimit: fc.oneof(fc.nat({ max: 1200 }), fc.constant(2 ** 32 - 1)),
  },
  { requiredKeys: [] },
);
const submit = fc.record({ type: fc.constantFrom(...TYPES), input: fc.option(anyInput, { nil: undefined }), options: fc.option(options, { nil: undefined }) });
const id = fc.oneof(fc.constant(''), fc.uuid(), fc.string({ maxLength: 100 }));
/** Times from before 1970 to past what a Date holds: the server must refuse, not throw. */
const timestamp = fc.oneof(fc.date({ noInvalidDate: true }), fc.integer({ min: -1e15, max: 1e15 }).map((ms) => new Date(ms)));
const filterFields = {
  queue: fc.oneof(fc.constant(''), fc.string({ maxLength: 300 })),
  type: fc.oneof(fc.constantFrom(...TYPES), fc.string({ maxLength: 300 })),
  states: fc.array(fc.integer({ min: -3, max: 9 }), { maxLength: 4 }),
  createdSince: timestamp,
  createdBefore: timestamp,
  finishedSince: timestamp,
  finishedBefore: timestamp,
  labels: fc.dictionary(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), { maxKeys: 20 }),
  errorCode: fc.integer({ min: -5, max: 40 }),
};
const filter = fc.record(filterFields, { requiredKeys: [] });

async function statusOf(call: Promise<unknown>): Promise<Status> {
  inputs++;
  return call.then(
    () => Status.OK,
    // The harness aborts streams that would stay open (a worker session, a follow): CANCELLED.
    (error: unknown) => (error instanceof ClientError ? error.code : isAbortError(error) ? Status.CANCELLED : Status.UNKNOWN),
  );
}

describe('hostile input', () => {
  it('answers random requests on every unary RPC with a proper status', async () => {
    const rpc = createRpcClient(TaskServiceDefinition, channel);
    const request = fc.oneof(
      submit.map((r) => () => rpc.submitTask(r as never)),
      fc.array(submit, { maxLength: 3 }).map((tasks) => () => rpc.submitTasks({ tasks } as never)),
      id.map((i) => () => rpc.getTask({ id: i })),
      fc.record({ id, reason: fc.string({ maxLength: 2000 }) }).map((r) => () => rpc.cancelTask(r)),
      id.map((i) => () => rpc.retryTask({ id: i })),
      fc
        .record({ queue: fc.string(), state: fc.integer({ min: -5, max: 20 }), type: fc.string(), pageSize: fc.nat({ max: 5000 }), pageToken: fc.string() })
        .map((r) => () => rpc.listTasks(r as never)),
      fc
        .record(
          {
            ...filterFields,
            state: fc.integer({ min: -5, max: 20 }),
            order: fc.integer({ min: -2, max: 5 }),
            pageSize: fc.nat({ max: 5000 }),
            pageToken: fc.oneof(fc.string(), fc.constantFrom(Buffer.from('o5').toString('base64url'), Buffer.from('s5').toString('base64url'))),
          },
          { requiredKeys: [] },
        )
        .map((r) => () => rpc.listTasks(r as never)),
      fc.record({ filter: fc.option(filter, { nil: undefined }), dryRun: fc.boolean(), limit: fc.oneof(fc.nat({ max: 12_000 }), fc.constant(2 ** 32 - 1)) }, { requiredKeys: [] }).map((r) => () => rpc.retryTasks(r as never)),
      fc
        .record({ filter: fc.option(filter, { nil: undefined }), dryRun: fc.boolean(), limit: fc.nat({ max: 12_000 }), reason: fc.string({ maxLength: 2000 }) }, { requiredKeys: [] })
        .map((r) => () => rpc.cancelTasks(r as never)),
      fc.constant(() => rpc.listWorkers({})),
      fc.string().map((queue) => () => rpc.getQueueStats({ queue })),
      // Never the honest work's queue: a pause there would hold it (that is what a pause is for).
      fc.string({ maxLength: 140 }).filter((q) => q !== 'default').map((queue) => () => rpc.pauseQueue({ queue })),
      fc.string({ maxLength: 140 }).map((queue) => () => rpc.resumeQueue({ queue })),
      id.map((i) => () => rpc.deleteTask({ id: i })),
      fc
        .record({
          queue: fc.oneof(fc.constant('default'), fc.string({ maxLength: 140 })),
          states: fc.array(fc.integer({ min: -5, max: 20 }), { maxLength: 4 }),
          finishedBefore: fc.option(fc.date({ noInvalidDate: true }), { nil: undefined }),
        })
        .map((r) => () => rpc.purgeQueue(r)),
    );
    await fc.assert(
      fc.asyncProperty(request, async (make) => {
        const code = await statusOf(make());
        expect(ALLOWED.has(code), `status ${Status[code]}`).toBe(true);
      }),
      { numRuns: 6_000 },
    );
  }, 120_000);

  it('answers random requests on every ScheduleService RPC with a proper status, and keeps every schedule readable', async () => {
    const rpc = createRpcClient(ScheduleServiceDefinition, channel);
    const scheduleId = fc.oneof(fc.constantFrom('', 'a', 'nightly', 'x'.repeat(129)), fc.string({ maxLength: 140 }));
    const timing = fc.oneof(
      fc.constant(undefined),
      fc
        .record({
          expression: fc.oneof(fc.constantFrom('* * * * *', '*/5 * * * * *', '0 0 30 2 *', '61 * * * *', '@hourly', ''), fc.string({ maxLength: 40 })),
          timeZone: fc.oneof(fc.constantFrom('', 'UTC', 'Europe/Berlin', 'Mars/Olympus'), fc.string({ maxLength: 40 })),
        })
        .map((value) => ({ $case: 'cron' as const, value })),
      duration.map((value) => ({ $case: 'interval' as const, value })),
    );
    const spec = fc.record(
      {
        type: fc.constantFrom(...TYPES),
        input: anyInput,
        options,
        timing,
        missedPolicy: fc.integer({ min: -2, max: 6 }),
        missedLimit: fc.oneof(fc.nat({ max: 2000 }), fc.constant(2 ** 32 - 1)),
        missedGrace: duration,
        overlapPolicy: fc.integer({ min: -2, max: 6 }),
      },
      { requiredKeys: [] },
    );
    const request = fc.oneof(
      fc.record({ id: scheduleId, spec: fc.option(spec, { nil: undefined }), paused: fc.boolean() }).map((r) => () => rpc.createSchedule(r as never)),
      fc.record({ id: scheduleId, spec: fc.option(spec, { nil: undefined }) }).map((r) => () => rpc.updateSchedule(r as never)),
      scheduleId.map((i) => () => rpc.pauseSchedule({ id: i })),
      scheduleId.map((i) => () => rpc.resumeSchedule({ id: i })),
      scheduleId.map((i) => () => rpc.getSchedule({ id: i })),
      scheduleId.map((i) => () => rpc.deleteSchedule({ id: i })),
      fc.record({ pageSize: fc.nat({ max: 5000 }), pageToken: fc.oneof(fc.constant(''), fc.string({ maxLength: 60 })) }).map((r) => () => rpc.listSchedules(r)),
    );
    await fc.assert(
      fc.asyncProperty(request, async (make) => {
        const code = await statusOf(make());
        expect(ALLOWED.has(code) || code === Status.ALREADY_EXISTS, `status ${Status[code]}`).toBe(true);
      }),
      { numRuns: 2_500 },
    );
    // Whatever was accepted reads back whole; then none is left to fire into the audit below.
    const { schedules } = await rpc.listSchedules({ pageSize: 1000, pageToken: '' });
    for (const schedule of schedules) {
      expect((await rpc.getSchedule({ id: schedule.id })).schedule?.spec?.type).toBe(schedule.spec?.type);
      await rpc.deleteSchedule({ id: schedule.id });
    }
  }, 120_000);

  it('answers raw garbage on any path without falling over', async () => {
    const raw = new grpc.Client(stack.address, grpc.credentials.createInsecure());
    const paths = ['/taskwire.v1.TaskService/SubmitTask', '/taskwire.v1.TaskService/GetTask', ECHO, '/taskwire.v1.Nope/X', '/x'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), fc.uint8Array({ maxLength: 256 }), async (path, bytes) => {
        inputs++;
        const code = await new Promise<number>((resolve) =>
          raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), new grpc.Metadata(), { deadline: Date.now() + 500 }, (e) =>
            resolve(e?.code ?? 0),
          ),
        );
        expect(ALLOWED.has(code), `${path}: ${grpc.status[code]}`).toBe(true);
      }),
      { numRuns: 1_500 },
    );
    raw.close();
  }, 120_000);

  it('answers raw garbage on the Session and Connect streams with INVALID_ARGUMENT, not INTERNAL', async () => {
    const raw = new grpc.Client(stack.address, grpc.credentials.createInsecure());
    const paths = ['/taskwire.v1.TaskService/Session', '/taskwire.v1.WorkerService/Connect'];
    // Bytes that cannot be a message: a field tag with wire type 7 (there is none), then anything.
    const garbage = fc.uint8Array({ maxLength: 64 }).map((tail) => Buffer.concat([Buffer.from([0x0f]), Buffer.from(tail)]));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...paths), garbage, async (path, bytes) => {
        inputs++;
        const call = raw.makeBidiStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata(), { deadline: Date.now() + 2_000 });
        const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
        call.on('data', () => undefined);
        call.on('error', () => undefined);
        call.write(bytes);
        call.end();
        expect(await status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/not a valid message/) });
      }),
      { numRuns: 200 },
    );
    raw.close();
  }, 60_000);

  it('survives random worker sessions: wrong hellos, huge credits, results for tasks it does not hold, progress floods', async () => {
    const worker = createRpcClient(WorkerServiceDefinition, channel);
    const ref = fc.record({ taskId: id, attempt: fc.nat({ max: 5 }) });
    const message: fc.Arbitrary<Partial<ConnectRequest>> = fc.oneof(
      fc.record({ credit: fc.oneof(fc.nat(), fc.constant(2 ** 32 - 1)) }),
      fc.record({ completes: fc.array(fc.record({ taskId: id, attempt: fc.nat({ max: 5 }), output: fc.option(anyInput, { nil: undefined }) }), { maxLength: 5 }) }),
      fc.record({ fails: fc.array(fc.record({ taskId: id, attempt: fc.nat({ max: 5 }), message: fc.string({ maxLength: 10_000 }), code: fc.integer(), retryable: fc.boolean() }), { maxLength: 5 }) }),
      fc.record({ progress: fc.array(fc.record({ taskId: id, attempt: fc.nat({ max: 5 }), percent: fc.float(), message: fc.string({ maxLength: 5_000 }) }), { maxLength: 200 }) }),
      fc.record({ releases: fc.array(ref, { maxLength: 5 }) }),
      fc.record({ heartbeat: fc.boolean() }),
    );
    const hello = fc.record({
      workerId: fc.oneof(fc.constant(''), fc.string({ maxLength: 300 })),
      taskTypes: fc.array(fc.constantFrom(...TYPES), { maxLength: 3 }),
      slots: fc.oneof(fc.nat({ max: 20 }), fc.constant(2 ** 32 - 1)),
      protocol: fc.constantFrom(ProtocolVersion.PROTOCOL_VERSION_1, ProtocolVersion.PROTOCOL_VERSION_UNSPECIFIED, 7 as ProtocolVersion),
      resume: fc.array(ref, { maxLength: 3 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.option(hello, { nil: undefined }), fc.array(message, { maxLength: 12 }), async (h, messages) => {
        const out = new Outbox<Partial<ConnectRequest>>((m) => Object.assign({}, ...m));
        if (h !== undefined) out.push({ hello: { labels: {}, version: 'fuzz', ...h } });
        for (const m of messages) out.push(m);
        out.end();
        inputs += messages.length + 1;
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 300);
        const code = await statusOf(
          (async () => {
            for await (const _ of worker.connect(out, { signal: controller.signal })) void _;
          })(),
        );
        clearTimeout(timer);
        expect(ALLOWED.has(code), `Connect: ${Status[code]}`).toBe(true);
      }),
      { numRuns: 800 },
    );
  }, 120_000);

  it('survives random Session streams: bad submits, duplicate refs, follows of anything', async () => {
    const rpc = createRpcClient(TaskServiceDefinition, channel);
    const sessionSubmit = fc.record({ ref: fc.nat(), request: fc.option(submit, { nil: undefined }), wantResult: fc.boolean() });
    const message = fc.record({ submits: fc.array(sessionSubmit, { maxLength: 8 }), follow: fc.array(id, { maxLength: 5 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { maxLength: 6 }), async (messages) => {
        inputs += messages.length;
        async function* requests() {
          for (const m of messages) yield m as never;
        }
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 300);
        const code = await statusOf(
          (async () => {
            for await (const _ of rpc.session(requests(), { signal: controller.signal })) void _;
          })(),
        );
        clearTimeout(timer);
        expect(ALLOWED.has(code), `Session: ${Status[code]}`).toBe(true);
      }),
      { numRuns: 300 },
    );
  }, 120_000);

  it('still runs honest work correctly, and the store is consistent', async () => {
    const client = stack.client();
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => client.run(ECHO, pack(EchoRequest, { text: `honest ${i}` }))));
    outcomes.forEach((o, i) => expect(unpack(EchoResponse, o.output).text).toBe(`honest ${i}`));

    const db = new Database(join(stack.dir, 'tasks.db'), { readonly: true });
    const rows = db.prepare('SELECT state, attempt, failures, max_attempts, lease_owner, output FROM tasks').all() as Array<{
      state: number;
      attempt: number;
      failures: number;
      max_attempts: number;
      lease_owner: string | null;
      output: Buffer | null;
    }>;
    db.close();
    for (const row of rows) {
      expect(row.state).toBeGreaterThanOrEqual(TaskState.TASK_STATE_SCHEDULED);
      expect(row.state).toBeLessThanOrEqual(TaskState.TASK_STATE_CANCELLED);
      if (row.state === TaskState.TASK_STATE_RUNNING) expect(row.lease_owner).not.toBeNull();
      if (row.state === TaskState.TASK_STATE_SUCCEEDED) expect(row.output).not.toBeNull();
      expect(row.failures).toBeLessThanOrEqual(row.max_attempts);
      expect(row.failures).toBeLessThanOrEqual(row.attempt);
    }
    // The counts the server keeps from events (deletions included) are the store's.
    const counted = new Database(join(stack.dir, 'tasks.db'), { readonly: true });
    const stored = counted.prepare('SELECT queue, state, COUNT(*) AS n FROM tasks GROUP BY queue, state').all() as Array<{ queue: string; state: number; n: number }>;
    counted.close();
    const byState = { 1: 'scheduled', 2: 'queued', 3: 'running', 4: 'succeeded', 5: 'failed', 6: 'cancelled' } as const;
    const kept = (await stack.client().stats()).flatMap((q) =>
      Object.entries(byState)
        .map(([state, field]) => ({ queue: q.queue, state: Number(state), n: Number(q[field]) }))
        .filter((row) => row.n !== 0),
    );
    const order = (a: { queue: string; state: number }, b: { queue: string; state: number }) => a.queue.localeCompare(b.queue) || a.state - b.state;
    expect(kept.sort(order)).toEqual(stored.sort(order));
    console.log(`hostile input: ${inputs} generated inputs, ${rows.length} tasks audited`);
    expect(inputs).toBeGreaterThanOrEqual(10_000);
  }, 60_000);
});

describe('forged results', () => {
  it('never let a session that does not hold the lease end a task, whatever it sends', async () => {
    const own = await startStack({ leaseMs: 10_000 });
    // The holder's Echo waits until the test lets it answer, so the task is RUNNING while forgeries arrive.
    const gates = new Map<string, () => void>();
    const started = new Map<string, () => void>();
    await own.worker({ workerId: 'holder', concurrency: 4 }, (defaults) => ({
      ...defaults,
      async echo(request, ctx) {
        await new Promise<void>((resolve) => {
          gates.set(ctx.taskId, resolve);
          started.get(request.text)?.();
        });
        return defaults.echo(request, ctx);
      },
    }));
    const client = own.client();
    const channel = createRpcChannel(own.address);
    const worker = createRpcClient(WorkerServiceDefinition, channel);
    const forgery = fc.record({
      workerId: fc.string({ minLength: 1, maxLength: 40 }).filter((w) => w !== 'holder' && !/[\p{Cc}]/u.test(w)),
      kind: fc.constantFrom('complete', 'fail', 'release', 'resume'),
      output: anyInput,
      retryable: fc.boolean(),
    });
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(forgery, async ({ workerId, kind, output, retryable }) => {
          inputs++;
          const text = `forged-${n++}`;
          const running = new Promise<void>((resolve) => started.set(text, resolve));
          const { id } = await client.submit(ECHO, pack(EchoRequest, { text }));
          await running;
          const { attempt } = await client.get(id);
          const ref = { taskId: id, attempt };
          const out = new Outbox<Partial<ConnectRequest>>((m) => Object.assign({}, ...m));
          const hello = { workerId, taskTypes: [ECHO], slots: 1, labels: {}, version: 'fuzz', protocol: ProtocolVersion.PROTOCOL_VERSION_1 };
          out.push({ hello: { ...hello, resume: kind === 'resume' ? [ref] : [] } });
          if (kind === 'complete' || kind === 'resume') out.push({ completes: [{ ...ref, output }] });
          if (kind === 'fail') out.push({ fails: [{ ...ref, message: 'forged', code: 13, retryable }] });
          if (kind === 'release') out.push({ releases: [ref] });
          // Every forgery is refused in `rejections`; then the intruder leaves.
          for await (const response of worker.connect(out)) {
            if (response.rejections.some((r) => r.taskId === id)) break;
          }
          out.end();
          gates.get(id)!();
          const outcome = await client.result(id);
          expect(outcome.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
          expect(outcome.attempt).toBe(attempt);
          expect(unpack(EchoResponse, outcome.output)).toMatchObject({ text, workerId: 'holder' });
        }),
        { numRuns: 60 },
      );
      expect(own.server.counters.refusedResults).toBe(60);
    } finally {
      channel.close();
      await own.stop();
    }
  }, 60_000);
});
