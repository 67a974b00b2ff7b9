import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse, FailRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { ProtocolVersion, WorkerServiceDefinition, type ConnectRequest } from '../../gen/ts/taskwire/v1/worker_service.js';
import { pack } from '../../src/client/index.js';
import { Code } from '../../src/errors.js';
import { createRpcChannel, createRpcClient, Outbox } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';
import { deferred, waitFor } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const FAIL = '/demo.v1.DemoService/Fail';
const S = TaskState;

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

describe('cancellation and timeouts', () => {
  it('aborts a running handler within a second of CancelTask', async () => {
    stack = await startStack();
    const started = deferred();
    const aborted = deferred<number>();
    await stack.worker({}, (d) => ({
      ...d,
      async sleep(request, ctx) {
        started.resolve();
        ctx.signal.addEventListener('abort', () => aborted.resolve(Date.now()), { once: true });
        return d.sleep(request, ctx);
      },
    }));
    const client = stack.client();
    const { id } = await client.submit(SLEEP, pack(SleepRequest, { durationMs: 30_000, steps: 0 }));
    await started.promise;
    const cancelledAt = Date.now();
    const task = await client.cancel(id, 'no longer needed');
    expect(task.state).toBe(S.TASK_STATE_CANCELLED);
    expect((await aborted.promise) - cancelledAt).toBeLessThan(1_000);
    expect((await client.result(id)).state).toBe(S.TASK_STATE_CANCELLED);
    expect((await client.get(id)).cancelReason).toBe('no longer needed');
  });

  it('aborts a handler at its execution timeout and counts the attempt as failed', async () => {
    stack = await startStack();
    const aborted = deferred<number>();
    await stack.worker({}, (d) => ({
      ...d,
      async sleep(request, ctx) {
        ctx.signal.addEventListener('abort', () => aborted.resolve(Date.now()), { once: true });
        return d.sleep(request, ctx);
      },
    }));
    const client = stack.client();
    const submitted = Date.now();
    const { id } = await client.submit(SLEEP, pack(SleepRequest, { durationMs: 30_000 }), {
      executionTimeoutMs: 300,
      maxAttempts: 1,
    });
    const abortedAt = await aborted.promise;
    expect(abortedAt - submitted).toBeLessThan(1_300);
    const outcome = await client.result(id);
    expect(outcome.state).toBe(S.TASK_STATE_FAILED);
    expect(outcome.error?.code).toBe(Code.DEADLINE_EXCEEDED);
  });
});

describe('retries', () => {
  it('backs off between attempts, fails after max attempts, and RetryTask revives it', async () => {
    stack = await startStack();
    const attempts: number[] = [];
    await stack.worker({}, (d) => ({
      ...d,
      async fail(request, ctx) {
        attempts.push(Date.now());
        return d.fail(request, ctx);
      },
    }));
    const client = stack.client();
    const { id } = await client.submit(FAIL, pack(FailRequest, { message: 'flaky', code: Code.UNAVAILABLE }), {
      maxAttempts: 3,
      backoff: { initialMs: 200, multiplier: 2, jitter: 0 },
    });
    const outcome = await client.result(id);
    expect(outcome.state).toBe(S.TASK_STATE_FAILED);
    expect(attempts).toHaveLength(3);
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(190);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(390);
    const dead = await client.get(id);
    expect(dead.errors.map((e) => [e.attempt, e.message, e.code])).toEqual([
      [1, 'flaky', Code.UNAVAILABLE],
      [2, 'flaky', Code.UNAVAILABLE],
      [3, 'flaky', Code.UNAVAILABLE],
    ]);

    const revived = await client.retry(id);
    expect(revived.state).toBe(S.TASK_STATE_QUEUED);
    await waitFor(async () => (await client.get(id)).state === S.TASK_STATE_FAILED && attempts.length === 6, { what: '3 more attempts' });
  });

  it('fails a non-retryable error at once, keeping its code', async () => {
    stack = await startStack();
    await stack.worker();
    const client = stack.client();
    const { id } = await client.submit(FAIL, pack(FailRequest, { message: 'bad size', permanent: true, code: Code.INVALID_ARGUMENT }), {
      maxAttempts: 5,
    });
    const outcome = await client.result(id);
    expect(outcome.state).toBe(S.TASK_STATE_FAILED);
    expect(outcome.error).toMatchObject({ code: Code.INVALID_ARGUMENT, retryable: false, attempt: 1 });
  });

  it('succeeds once the failures stop', async () => {
    stack = await startStack();
    await stack.worker();
    const client = stack.client();
    const { id } = await client.submit(FAIL, pack(FailRequest, { failAttempts: 2 }), { backoff: { initialMs: 10 } });
    expect((await client.result(id)).state).toBe(S.TASK_STATE_SUCCEEDED);
    expect((await client.get(id)).attempt).toBe(3);
  });
});

describe('submit options', () => {
  it('returns the same task for an idempotent resubmit', async () => {
    stack = await startStack();
    const client = stack.client();
    const a = await client.submit(ECHO, pack(EchoRequest, { text: 'x' }), { idempotencyKey: 'order-42' });
    const b = await client.submit(ECHO, pack(EchoRequest, { text: 'x' }), { idempotencyKey: 'order-42' });
    expect(b).toEqual({ id: a.id, existing: true });
    expect(a.existing).toBe(false);
  });

  it('runs higher priorities first, then in submit order', async () => {
    stack = await startStack();
    const client = stack.client();
    const order: string[] = [];
    const low1 = await client.submit(ECHO, pack(EchoRequest, { text: 'low1' }));
    const high = await client.submit(ECHO, pack(EchoRequest, { text: 'high' }), { priority: 10 });
    const low2 = await client.submit(ECHO, pack(EchoRequest, { text: 'low2' }));
    await stack.worker({ concurrency: 1 }, (d) => ({
      ...d,
      async echo(request, ctx) {
        order.push(request.text);
        return d.echo(request, ctx);
      },
    }));
    await Promise.all([low1, high, low2].map((t) => client.result(t.id)));
    expect(order).toEqual(['high', 'low1', 'low2']);
  });

  it('does not run a task before run_at', async () => {
    stack = await startStack();
    await stack.worker();
    const client = stack.client();
    const runAt = new Date(Date.now() + 500);
    const { id } = await client.submit(ECHO, pack(EchoRequest, { text: 'later' }), { runAt });
    expect((await client.get(id)).state).toBe(S.TASK_STATE_SCHEDULED);
    await client.result(id);
    const task = await client.get(id);
    expect(task.startTime!.getTime()).toBeGreaterThanOrEqual(runAt.getTime());
  });

  it('never gives a worker with 2 slots more than 2 tasks at once', async () => {
    stack = await startStack();
    let current = 0;
    let max = 0;
    await stack.worker({ concurrency: 2 }, (d) => ({
      ...d,
      async sleep(request, ctx) {
        current++;
        max = Math.max(max, current);
        try {
          return await d.sleep(request, ctx);
        } finally {
          current--;
        }
      },
    }));
    const client = stack.client();
    const tasks = await client.submitMany(
      Array.from({ length: 20 }, () => ({ type: SLEEP, input: pack(SleepRequest, { durationMs: 20 }) })),
    );
    await Promise.all(tasks.map((t) => client.result(t.id)));
    expect(max).toBe(2);
    const workers = await client.workers();
    expect(workers).toHaveLength(1);
    expect(workers[0]!.slots).toBe(2);
  });
});

describe('fencing', () => {
  it('rejects a late result from an attempt whose lease was lost', async () => {
    stack = await startStack({ leaseMs: 500 });
    const client = stack.client();
    const { id } = await client.submit(ECHO, pack(EchoRequest, { text: 'fenced' }));

    // A worker that takes the task and then goes silent past its lease.
    const channel = createRpcChannel(stack.address);
    const rpc = createRpcClient(WorkerServiceDefinition, channel);
    const out = new Outbox<Partial<ConnectRequest>>((m) => m.at(-1)!);
    out.push({ hello: { workerId: 'deaf', taskTypes: [ECHO], slots: 1, protocol: ProtocolVersion.PROTOCOL_VERSION_1, labels: {}, version: 't', resume: [] } });
    const responses = rpc.connect(out)[Symbol.asyncIterator]();
    expect((await responses.next()).value?.welcome).toBeDefined();
    const assigned = (await responses.next()).value!.assignments[0]!;
    expect(assigned.taskId).toBe(id);

    // The silent session is closed and the attempt fails over to a healthy worker.
    await expect(responses.next()).rejects.toThrow(/no message from worker/);
    await stack.worker({ workerId: 'healthy' });
    const outcome = await client.result(id);
    expect(outcome.state).toBe(S.TASK_STATE_SUCCEEDED);
    expect(outcome.attempt).toBe(2);

    // The deaf worker comes back with its old result: refused (its lease is gone), counted, not applied.
    const late = new Outbox<Partial<ConnectRequest>>((m) => m.at(-1)!);
    late.push({ hello: { workerId: 'deaf', taskTypes: [ECHO], slots: 1, protocol: ProtocolVersion.PROTOCOL_VERSION_1, labels: {}, version: 't', resume: [] } });
    const lateResponses = rpc.connect(late)[Symbol.asyncIterator]();
    await lateResponses.next();
    late.push({ completes: [{ taskId: id, attempt: assigned.attempt, output: pack(EchoResponse, { text: 'stale' }) }] });
    const answer = (await lateResponses.next()).value!;
    expect(answer.rejected).toEqual([{ taskId: id, attempt: 1 }]);
    expect(answer.rejections).toEqual([{ taskId: id, attempt: 1, reason: expect.stringMatching(/does not hold the lease on attempt 1/) }]);
    expect(stack.server.counters.refusedResults).toBe(1);
    expect((await client.get(id)).attempt).toBe(2);
    late.end();
    channel.close();
  });
});

describe('watch', () => {
  it('streams committed states and progress until the task ends', async () => {
    stack = await startStack();
    await stack.worker();
    const client = stack.client();
    const { id } = await client.submit(SLEEP, pack(SleepRequest, { durationMs: 300, steps: 3 }), { delayMs: 100 });
    const states: number[] = [];
    const progress: number[] = [];
    for await (const event of client.watch(id)) {
      if (event?.$case === 'task') states.push(event.value.state);
      if (event?.$case === 'progress') progress.push(Math.round(event.value.percent));
    }
    expect(states[0]).toBe(S.TASK_STATE_SCHEDULED);
    expect(states).toContain(S.TASK_STATE_RUNNING);
    expect(states.at(-1)).toBe(S.TASK_STATE_SUCCEEDED);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(100);
  });
});


describe('session age', () => {
  it('drains a worker session after its max age; the worker reconnects and keeps working', async () => {
    stack = await startStack({ maxSessionAgeMs: 400 });
    await stack.worker({ workerId: 'ageing' });
    const client = stack.client();
    const first = await waitFor(async () => (await client.workers())[0]?.sessionId, { what: 'a session' });
    const second = await waitFor(
      async () => {
        const [worker] = await client.workers();
        return worker !== undefined && worker.sessionId !== first && worker.sessionId;
      },
      { what: 'a new session after the drain' },
    );
    expect(second).not.toBe(first);
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => client.run(ECHO, pack(EchoRequest, { text: `${i}` }))));
    expect(outcomes.every((o) => o.state === S.TASK_STATE_SUCCEEDED)).toBe(true);
  });
});

describe('limits', () => {
  it('refuses submits past the waiting-task limit with RESOURCE_EXHAUSTED', async () => {
    stack = await startStack({ maxWaitingTasks: 3 });
    const client = stack.client();
    for (let i = 0; i < 3; i++) await client.submit(ECHO, pack(EchoRequest, { text: `${i}` }));
    const error = await client.submit(ECHO, pack(EchoRequest, { text: 'one too many' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: Code.RESOURCE_EXHAUSTED });
    expect(String((error as Error).message)).toMatch(/3 tasks are waiting, the most this server accepts is 3/);
    // Once work drains, there is room again.
    await stack.worker();
    await waitFor(async () => (await client.stats())[0]?.queued === 0, { what: 'the queue to drain' });
    expect((await client.submit(ECHO, pack(EchoRequest, { text: 'room again' }))).id).toBeTruthy();
  });

  it('refuses watchers past the limit with RESOURCE_EXHAUSTED', async () => {
    stack = await startStack({ maxWatchers: 1 });
    const client = stack.client();
    const { id } = await client.submit(ECHO, pack(EchoRequest, { text: 'watched' }));
    const controller = new AbortController();
    const first = client.watch(id, { signal: controller.signal })[Symbol.asyncIterator]();
    await first.next();
    const second = await (async () => {
      for await (const _ of client.watch(id)) void _;
    })().catch((e: unknown) => e);
    expect(second).toMatchObject({ code: Code.RESOURCE_EXHAUSTED });
    controller.abort();
    await first.next().catch(() => undefined); // the aborted stream ends
  });
});
