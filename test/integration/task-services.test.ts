import { ClientError, Metadata, Status } from 'nice-grpc';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskFailedError } from '../../src/client/index.js';
import { Code, TaskwireError } from '../../src/errors.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';
import { startCli } from '../helpers/processes.js';
import { deferred } from '../helpers/wait.js';

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

/** A worker whose Sleep handler says when an attempt starts and when its signal aborts. */
async function sleepWatchedWorker(on: NonNullable<typeof stack>) {
  const started = deferred();
  const aborted = deferred();
  await on.worker({}, (d) => ({
    ...d,
    async sleep(request, ctx) {
      started.resolve();
      ctx.signal.addEventListener('abort', () => aborted.resolve(), { once: true });
      return d.sleep(request, ctx);
    },
  }));
  return { started, aborted };
}

function gateway(address: string) {
  const channel = createRpcChannel(address);
  return { demo: createRpcClient(DemoServiceDefinition, channel), close: () => channel.close() };
}

async function statusOf(call: Promise<unknown>) {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClientError);
  return error as ClientError;
}

describe('typed client', () => {
  it('submits with a typed input and returns the typed result', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'typed-worker' });
    const demo = stack.client().service(DemoServiceDefinition);
    const handle = await demo.echo.submit({ text: 'typed' });
    const result = await handle.result();
    expect(result).toEqual({ text: 'typed', payload: Buffer.alloc(0), workerId: 'typed-worker', attempt: 1 });
    expect(await demo.echo.call({ text: 'again' })).toMatchObject({ text: 'again' });
  });

  it('throws TaskFailedError with the failure code', async () => {
    stack = await startStack();
    await stack.worker();
    const demo = stack.client().service(DemoServiceDefinition);
    const error = await demo.fail.call({ permanent: true, code: Code.INVALID_ARGUMENT, message: 'bad' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect((error as TaskFailedError).code).toBe(Status.INVALID_ARGUMENT);
  });

  it('cancels the task when a call passes its deadline', async () => {
    stack = await startStack();
    const { aborted } = await sleepWatchedWorker(stack);
    const client = stack.client();
    const error = await client.service(DemoServiceDefinition).sleep.call({ durationMs: 5_000 }, { deadline: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskwireError);
    expect((error as TaskwireError).code).toBe(Code.DEADLINE_EXCEEDED);
    await aborted.promise;
    const [task] = (await client.list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    expect(task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });

  it('cancels the task when the caller aborts a call, and stops waiting at once', async () => {
    stack = await startStack();
    const { started, aborted } = await sleepWatchedWorker(stack);
    const client = stack.client();
    const controller = new AbortController();
    const call = client.service(DemoServiceDefinition).sleep.call({ durationMs: 30_000 }, { signal: controller.signal });
    await started.promise;
    controller.abort(new Error('not needed any more'));
    const error = await call.catch((e: unknown) => e);
    expect((error as Error).message).toBe('not needed any more');
    await aborted.promise;
    const [task] = (await client.list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    expect(task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });

  it('answers a repeated call with the same idempotency key from the task that ran', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'once' });
    const demo = stack.client().service(DemoServiceDefinition);
    const first = await demo.echo.call({ text: 'once' }, { idempotencyKey: 'echo-once' });
    // The task has ended: its outcome comes back with the ack of the second submit.
    const again = await demo.echo.call({ text: 'twice' }, { idempotencyKey: 'echo-once' });
    expect(again).toEqual(first);
    expect(again.text).toBe('once');
    const tasks = (await stack.client().list({ type: '/demo.v1.DemoService/Echo' })).tasks;
    expect(tasks).toHaveLength(1);
  });
});

describe('gateway', () => {
  it('serves a task service as plain unary gRPC methods, run durably by a worker', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'gateway-worker' });
    const { demo, close } = gateway(stack.address);
    let taskId: string | undefined;
    const response = await demo.echo({ text: 'through the gateway' }, { onHeader: (h) => (taskId = h.get('taskwire-task-id')) });
    expect(response).toEqual({ text: 'through the gateway', payload: Buffer.alloc(0), workerId: 'gateway-worker', attempt: 1 });
    expect(taskId).toBeDefined();
    const task = await stack.client().get(taskId!);
    expect(task.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    close();
  });

  it('keeps a handler’s INVALID_ARGUMENT and answers ABORTED when retries run out', async () => {
    stack = await startStack();
    await stack.worker();
    const { demo, close } = gateway(stack.address);
    const invalid = await statusOf(demo.fail({ permanent: true, code: Code.INVALID_ARGUMENT, message: 'width must be positive' }));
    expect([invalid.code, invalid.details]).toEqual([Status.INVALID_ARGUMENT, 'width must be positive']);
    const exhausted = await statusOf(demo.fail({ code: Code.UNAVAILABLE, message: 'flaky backend' }));
    expect(exhausted.code).toBe(Status.ABORTED);
    expect(exhausted.details).toMatch(/failed after 3 attempts; last error: flaky backend/);
    close();
  }, 20_000);

  it('honours deadlines longer than a runtime timer holds (24.8 days): the call runs, it is not cut off at once', async () => {
    stack = await startStack();
    await stack.worker();
    const month = 30 * 24 * 3_600_000;
    // The typed call: the deadline becomes the task's execution timeout, timed on the worker.
    const typed = await stack.client().service(DemoServiceDefinition).sleep.call({ durationMs: 300, steps: 0 }, { deadline: month });
    expect(typed.sleptMs).toBeGreaterThanOrEqual(300);
    // A unary call to the gateway with taskwire's client: grpc-js servers cut a grpc-timeout over 2^31-1 ms
    // to a negative number, so the client tells the server at most that and keeps the rest itself.
    const { demo, close } = gateway(stack.address);
    try {
      const plain = await demo.echo({ text: 'long too' }, { deadline: new Date(Date.now() + month) });
      expect(plain.text).toBe('long too');
    } finally {
      close();
    }
  });

  it('turns the caller’s deadline into a cancellation the handler sees', async () => {
    stack = await startStack();
    const { aborted } = await sleepWatchedWorker(stack);
    const { demo, close } = gateway(stack.address);
    const error = await statusOf(demo.sleep({ durationMs: 5_000 }, { deadline: 200 }));
    expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
    await aborted.promise;
    close();
  });

  it('turns the caller’s cancellation into a cancelled task', async () => {
    stack = await startStack();
    const { started, aborted } = await sleepWatchedWorker(stack);
    const { demo, close } = gateway(stack.address);
    const controller = new AbortController();
    const call = demo.sleep({ durationMs: 5_000 }, { signal: controller.signal }).catch((e: unknown) => e);
    await started.promise;
    controller.abort();
    await call;
    await aborted.promise;
    const [task] = (await stack.client().list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    expect(task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
    close();
  });

  it('takes an idempotency key from metadata', async () => {
    stack = await startStack();
    await stack.worker();
    const { demo, close } = gateway(stack.address);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      await demo.echo(
        { text: 'once' },
        { metadata: Metadata({ 'taskwire-idempotency-key': 'k-1' }), onHeader: (h) => ids.push(h.get('taskwire-task-id')!) },
      );
    }
    expect(ids[0]).toBe(ids[1]);
    expect((await stack.client().list({})).tasks).toHaveLength(1);
    close();
  });

  it('counts each call in the per-RPC metrics with the code its caller got', async () => {
    const registry = new Registry();
    stack = await startStack({ metricsRegistry: registry });
    await stack.worker();
    const { demo, close } = gateway(stack.address);
    await demo.echo({ text: 'counted' });
    await demo.echo({ text: 'counted again' });
    await statusOf(demo.fail({ permanent: true, code: Code.INVALID_ARGUMENT, message: 'no' }));
    close();
    const values = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
    const requests = await values('taskwire_rpc_requests_total');
    const count = (method: string, code: string) => requests.find((v) => v.labels.method === method && v.labels.code === code)?.value;
    expect(count('/demo.v1.DemoService/Echo', 'OK')).toBe(2);
    expect(count('/demo.v1.DemoService/Fail', 'INVALID_ARGUMENT')).toBe(1);
    const durations = await values('taskwire_rpc_duration_seconds');
    expect(durations.find((v) => (v as { metricName?: string }).metricName === 'taskwire_rpc_duration_seconds_count' && v.labels.method === '/demo.v1.DemoService/Echo')?.value).toBe(2);
  });

  it('ends a waiting call UNAVAILABLE when the server drains, and leaves its task to run', async () => {
    stack = await startStack();
    const { started } = await sleepWatchedWorker(stack);
    const { demo, close } = gateway(stack.address);
    let taskId: string | undefined;
    const call = statusOf(demo.sleep({ durationMs: 400 }, { onHeader: (h) => (taskId = h.get('taskwire-task-id')) }));
    await started.promise;
    const stopped = stack.server.shutdown();
    const error = await call;
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(taskId).toBeDefined();
    expect(error.details).toContain(`task ${taskId} goes on`);
    await stopped;
    close();
  });

  it('rejects a request that is not a valid message with INVALID_ARGUMENT', async () => {
    stack = await startStack();
    const channel = createRpcChannel(stack.address);
    const raw = createRpcClient(
      {
        echo: {
          path: '/demo.v1.DemoService/Echo',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Uint8Array) => b,
          requestDeserialize: (b: Uint8Array) => b,
          responseSerialize: (b: Uint8Array) => b,
          responseDeserialize: (b: Uint8Array) => b,
          options: {},
        },
      },
      channel,
    );
    const error = await statusOf(raw.echo(Buffer.from([0x0f, 0xff, 0xff])));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/input is not a valid demo.v1.EchoRequest/);
    channel.close();
  });
});

describe('typed watch', () => {
  it('yields state names with the input and output decoded, and progress', async () => {
    stack = await startStack();
    const demo = stack.client().service(DemoServiceDefinition);
    const sleep = await demo.sleep.submit({ durationMs: 200, steps: 2 });
    const events = [];
    for await (const event of sleep.watch()) {
      events.push(event);
      if (events.length === 1) await stack.worker(); // the watch is attached before the task can run
    }
    expect(events[0]).toMatchObject({ kind: 'state', state: 'QUEUED' });
    const states = events.flatMap((e) => (e.kind === 'state' ? [e.state] : []));
    expect(states.at(-1)).toBe('SUCCEEDED');
    expect(states).toContain('RUNNING');
    const last = events.at(-1)!;
    expect(last).toMatchObject({ kind: 'state', state: 'SUCCEEDED', attempt: 1, input: { durationMs: 200, steps: 2 }, errors: [] });
    expect(last.kind === 'state' && typeof last.output!.sleptMs).toBe('number'); // a decoded SleepResponse
    expect(events.some((e) => e.kind === 'progress' && e.percent > 0)).toBe(true);
  });
});

describe('task defaults', () => {
  it('come from the method’s (taskwire.v1.task) option in the proto', async () => {
    stack = await startStack();
    const handle = await stack.client().service(DemoServiceDefinition).sleep.submit({ durationMs: 1 });
    expect((await stack.client().get(handle.id)).options).toMatchObject({ maxAttempts: 2, priority: 7 });
    const echo = await stack.client().service(DemoServiceDefinition).echo.submit({ text: 'x' });
    expect((await stack.client().get(echo.id)).options).toMatchObject({ maxAttempts: 3, priority: 0 });
  });

  it('hold for every field a TS client leaves unset, whatever else it sets; 0 is a priority one may ask for', async () => {
    stack = await startStack();
    const client = stack.client();
    const sleep = client.service(DemoServiceDefinition).sleep;
    const options = async (submitted: Promise<{ id: string }>) => (await client.get((await submitted).id)).options;
    expect(await options(sleep.submit({ durationMs: 1 }, { idempotencyKey: 'k-defaults' }))).toMatchObject({ priority: 7, maxAttempts: 2 });
    expect(await options(sleep.submit({ durationMs: 1 }, { queue: 'q1' }))).toMatchObject({ priority: 7, maxAttempts: 2, queue: 'q1' });
    expect(await options(sleep.submit({ durationMs: 1 }, { maxAttempts: 5 }))).toMatchObject({ priority: 7, maxAttempts: 5 });
    expect(await options(sleep.submit({ durationMs: 1 }, { priority: 3 }))).toMatchObject({ priority: 3, maxAttempts: 2 });
    expect(await options(sleep.submit({ durationMs: 1 }, { priority: 0, queue: 'q1' }))).toMatchObject({ priority: 0, maxAttempts: 2 });
  });

  it('hold through the gateway, with an idempotency key and a deadline', async () => {
    stack = await startStack();
    await stack.worker();
    const { demo, close } = gateway(stack.address);
    let taskId: string | undefined;
    await demo.sleep(
      { durationMs: 1 },
      { metadata: Metadata({ 'taskwire-idempotency-key': 'gw-defaults' }), deadline: 10_000, onHeader: (h) => (taskId = h.get('taskwire-task-id')) },
    );
    expect((await stack.client().get(taskId!)).options).toMatchObject({ priority: 7, maxAttempts: 2, idempotencyKey: 'gw-defaults' });
    close();
  });

  it('hold from the CLI, with other options set; --priority 0 overrides', async () => {
    stack = await startStack();
    const submit = async (...extra: string[]) => {
      const proc = startCli(['--server', stack!.address, 'submit', '/demo.v1.DemoService/Sleep', '{"durationMs": 1}', ...extra]);
      expect(await proc.exited).toBe(0);
      return (await stack!.client().get(proc.lines[0]!.msg!)).options;
    };
    expect(await submit('--queue', 'q1', '--idempotency-key', 'cli-defaults')).toMatchObject({ priority: 7, maxAttempts: 2, queue: 'q1' });
    expect(await submit('--max-attempts', '4')).toMatchObject({ priority: 7, maxAttempts: 4 });
    expect(await submit('--priority', '0')).toMatchObject({ priority: 0, maxAttempts: 2 });
  });
});
