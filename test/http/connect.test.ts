import { readFileSync } from 'node:fs';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema, MethodOptionsSchema, MethodOptions_IdempotencyLevel } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { ClientError, Status } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { createRegistry } from '../../src/http/index.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { envelope, envelopes, postJson, startHttpStack } from './helpers.js';

let stack: Awaited<ReturnType<typeof startHttpStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const registry = createRegistry([]);
const TaskService = registry.getService('taskwire.v1.TaskService')!;
const ECHO_INPUT = { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text: 'over http' };
const utf8 = new TextEncoder();

/** connect-es's client for a service known only at run time (from the descriptor set): untyped. */
type UntypedClient = Record<string, (request: object) => Promise<any> & AsyncIterable<any>>;
const clientOf = (transport: Transport) => createClient(TaskService, transport) as unknown as UntypedClient;
const text = new TextDecoder();

/** A stack whose Sleep handler reports when it starts and when its signal aborts. */
async function sleepyStack() {
  const s = await startHttpStack();
  const started = deferred();
  const aborted = deferred();
  await s.worker({}, (d) => ({
    ...d,
    async sleep(request, ctx) {
      started.resolve();
      ctx.signal.addEventListener('abort', () => aborted.resolve(), { once: true });
      return d.sleep(request, ctx);
    },
  }));
  return { s, started, aborted };
}

const stateOf = async (baseUrl: string, id: string) =>
  (await postJson(baseUrl, '/taskwire.v1.TaskService/GetTask', { id, view: 'TASK_VIEW_BASIC' })).json?.task?.state as string | undefined;

describe('Connect JSON', () => {
  it('calls a task service through the gateway and answers its result as JSON', async () => {
    stack = await startHttpStack();
    await stack.worker({ workerId: 'http-worker' });
    const echo = await postJson(stack.baseUrl, '/demo.v1.DemoService/Echo', { text: 'hi' });
    expect(echo.status).toBe(200);
    expect(echo.json).toEqual({ text: 'hi', workerId: 'http-worker', attempt: 1 });
    const id = echo.headers.get('taskwire-task-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // GetTask answers the user's own message types as readable JSON, named by "@type".
    const got = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/GetTask', { id });
    expect(got.status).toBe(200);
    expect(got.json.task).toMatchObject({
      id,
      state: 'TASK_STATE_SUCCEEDED',
      input: { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text: 'hi' },
      output: { '@type': 'type.googleapis.com/demo.v1.EchoResponse', text: 'hi', workerId: 'http-worker', attempt: 1 },
    });
  });

  it('submits with an "@type" input and lists, counts and cancels like gRPC', async () => {
    stack = await startHttpStack();
    const submitted = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/SubmitTask', {
      type: '/demo.v1.DemoService/Echo',
      input: ECHO_INPUT,
      options: { queue: 'http' },
    });
    expect(submitted.status).toBe(200);
    expect(submitted.json.task).toMatchObject({ state: 'TASK_STATE_QUEUED', options: { queue: 'http' } });
    const id = submitted.json.task.id as string;
    // The gRPC client sees the same task.
    expect((await stack.client().get(id)).state).toBe(TaskState.TASK_STATE_QUEUED);

    const stats = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/GetQueueStats', { queue: 'http' });
    // int64 is a JSON string; a Duration is "<seconds>s"; the rate counts the one submit over a minute.
    expect(stats.json).toEqual({ queues: [{ queue: 'http', queued: '1', oldestQueuedAge: expect.stringMatching(/^\d+(\.\d+)?s$/), submittedPerSecond: 1 / 60 }] });
    const list = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/ListTasks', { queue: 'http' });
    expect(list.json.tasks.map((t: { id: string }) => t.id)).toEqual([id]);
    const cancelled = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/CancelTask', { id, reason: 'from curl' });
    expect(cancelled.json.task.state).toBe('TASK_STATE_CANCELLED');
    const again = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/CancelTask', { id });
    expect([again.status, again.json.code]).toEqual([400, 'failed_precondition']);
    const retried = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/RetryTask', { id });
    expect(retried.json.task.state).toBe('TASK_STATE_QUEUED');
    expect((await postJson(stack.baseUrl, '/taskwire.v1.TaskService/ListWorkers', {})).json).toEqual({});
  });

  it('retries and cancels by filter, and lists with the new filters, in Connect JSON', async () => {
    stack = await startHttpStack();
    const submit = (labels: Record<string, string>) =>
      postJson(stack!.baseUrl, '/taskwire.v1.TaskService/SubmitTask', { type: '/demo.v1.DemoService/Echo', input: ECHO_INPUT, options: { queue: 'bulk-http', labels } });
    const ids = [];
    for (const env of ['prod', 'prod', 'dev']) ids.push((await submit({ env })).json.task.id as string);
    const filter = { queue: 'bulk-http', labels: { env: 'prod' }, states: ['TASK_STATE_QUEUED'] };
    const dry = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/CancelTasks', { filter, dryRun: true });
    expect([dry.status, dry.json]).toEqual([200, { count: 2 }]); // proto3 JSON leaves out more=false
    const cancelled = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/CancelTasks', { filter, reason: 'over http', limit: 1 });
    expect(cancelled.json).toEqual({ count: 1, more: true });
    expect((await postJson(stack.baseUrl, '/taskwire.v1.TaskService/CancelTasks', { filter })).json).toEqual({ count: 1 });

    const listed = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/ListTasks', {
      queue: 'bulk-http',
      states: ['TASK_STATE_CANCELLED'],
      order: 'TASK_ORDER_OLDEST_FIRST',
      createdSince: new Date(Date.now() - 60_000).toISOString(),
    });
    expect(listed.json.tasks.map((t: { id: string }) => t.id)).toEqual(ids.slice(0, 2));
    expect(listed.json.tasks[0].cancelReason).toBe('over http');

    const retried = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/RetryTasks', { filter: { queue: 'bulk-http' } });
    expect(retried.json).toEqual({ count: 2 });
    const refused = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/RetryTasks', { filter: {} });
    expect([refused.status, refused.json.code, refused.json.message]).toEqual([400, 'invalid_argument', expect.stringMatching(/filter is empty/)]);
  });

  it('answers errors with the same code and message as gRPC', async () => {
    stack = await startHttpStack();
    const channel = createRpcChannel(stack.address);
    const grpc = createRpcClient(TaskServiceDefinition, channel);
    const viaGrpc = (await grpc.getTask({ id: 'no-such-task' }).catch((e: unknown) => e)) as ClientError;
    channel.close();
    expect(viaGrpc.code).toBe(Status.NOT_FOUND);
    const viaHttp = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/GetTask', { id: 'no-such-task' });
    expect([viaHttp.status, viaHttp.json]).toEqual([404, { code: 'not_found', message: viaGrpc.details }]);

    const invalid = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/SubmitTask', { type: '/demo.v1.DemoService/Nope', input: ECHO_INPUT });
    expect([invalid.status, invalid.json.code]).toEqual([400, 'invalid_argument']);
    expect(invalid.json.message).toMatch(/Nope/);
  });

  it('answers health checks', async () => {
    stack = await startHttpStack();
    const health = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', {});
    expect([health.status, health.json]).toEqual([200, { status: 'SERVING' }]);
    const one = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', { service: 'demo.v1.DemoService' });
    expect(one.json).toEqual({ status: 'SERVING' });
    const unknown = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', { service: 'nope.v1.Nope' });
    expect(unknown.json.code).toBe('not_found');
  });

  it('reports NOT_SERVING over HTTP as soon as the server begins to shut down', async () => {
    const s = await startHttpStack({ drainDelayMs: 1_000 });
    const stopping = s.server.shutdown();
    const health = await postJson(s.baseUrl, '/grpc.health.v1.Health/Check', {});
    expect(health.json).toEqual({ status: 'NOT_SERVING' });
    await stopping;
    await s.stop();
  });

  it('keeps Session on gRPC and reads only with POST', async () => {
    stack = await startHttpStack();
    const session = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/Session`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: envelope(utf8.encode('{}')),
    });
    expect(session.status).toBe(505); // a bidirectional stream needs HTTP/2: it is served over gRPC
    // GetTask is not marked NO_SIDE_EFFECTS (buf breaking forbids changing it), so Connect GET is not allowed.
    const get = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/GetTask?encoding=json&message=${encodeURIComponent('{"id":"x"}')}`);
    expect(get.status).toBe(405);
    const missing = await postJson(stack.baseUrl, '/taskwire.v1.NoService/Nope', {});
    expect(missing.status).toBe(404);
  });
});

describe('Connect binary and gRPC-Web', () => {
  it('calls the gateway with a binary body', async () => {
    stack = await startHttpStack();
    await stack.worker({ workerId: 'binary-worker' });
    const response = await fetch(`${stack.baseUrl}/demo.v1.DemoService/Echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto' },
      body: EchoRequest.encode({ text: 'bytes', payload: Buffer.from([0, 1, 2, 255]) }).finish(),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/proto');
    const echo = EchoResponse.decode(new Uint8Array(await response.arrayBuffer()));
    expect(echo).toEqual({ text: 'bytes', payload: Buffer.from([0, 1, 2, 255]), workerId: 'binary-worker', attempt: 1 });
  });

  it('answers a raw gRPC-Web request, with its status in the trailer frame', async () => {
    stack = await startHttpStack();
    await stack.worker({ workerId: 'web-worker' });
    const response = await fetch(`${stack.baseUrl}/demo.v1.DemoService/Echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/grpc-web+proto', 'x-grpc-web': '1' },
      body: envelope(EchoRequest.encode(EchoRequest.fromPartial({ text: 'grpc-web' })).finish()),
    });
    expect(response.status).toBe(200);
    const [data, trailer] = envelopes(new Uint8Array(await response.arrayBuffer()));
    expect(data!.flags).toBe(0);
    expect(EchoResponse.decode(data!.data)).toMatchObject({ text: 'grpc-web', workerId: 'web-worker' });
    expect(trailer!.flags).toBe(0x80);
    expect(text.decode(trailer!.data)).toMatch(/grpc-status: ?0/);
  });

  it('serves gRPC-Web to connect-node’s gRPC-Web transport, errors included', async () => {
    stack = await startHttpStack();
    const client = clientOf(createGrpcWebTransport({ baseUrl: stack.baseUrl, httpVersion: '1.1' }));
    const error = await client.getTask({ id: 'missing' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect([(error as ConnectError).code, (error as ConnectError).rawMessage]).toEqual([Code.NotFound, 'no task with id "missing"']);
    // WatchTask as a gRPC-Web server stream: a finished task streams its state and the stream ends.
    await stack.worker();
    const echoed = await postJson(stack.baseUrl, '/demo.v1.DemoService/Echo', { text: 'watched' });
    const states: number[] = [];
    for await (const event of client.watchTask({ id: echoed.headers.get('taskwire-task-id') })) states.push(event.event.value.state);
    expect(states).toEqual([TaskState.TASK_STATE_SUCCEEDED]);
  });
});

describe('WatchTask as a Connect server stream', () => {
  it('streams the task, its progress and its end over HTTP/1.1 with JSON envelopes', async () => {
    stack = await startHttpStack();
    await stack.worker();
    const submitted = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/SubmitTask', {
      type: '/demo.v1.DemoService/Sleep',
      input: { '@type': 'type.googleapis.com/demo.v1.SleepRequest', durationMs: 300, steps: 3 },
    });
    const id = submitted.json.task.id as string;
    const response = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/WatchTask`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: envelope(utf8.encode(JSON.stringify({ id }))),
      signal: AbortSignal.timeout(10_000),
    });
    expect(response.headers.get('content-type')).toBe('application/connect+json');
    const frames = envelopes(new Uint8Array(await response.arrayBuffer()));
    const end = frames.pop()!;
    expect([end.flags, JSON.parse(text.decode(end.data))]).toEqual([2, {}]);
    const events = frames.map((f) => JSON.parse(text.decode(f.data)));
    const progress = events.filter((e) => e.progress !== undefined).map((e) => e.progress.message);
    expect(progress.at(-1)).toBe('step 3 of 3');
    expect(events.at(-1).task).toMatchObject({ id, state: 'TASK_STATE_SUCCEEDED', output: { '@type': 'type.googleapis.com/demo.v1.SleepResponse' } });
  });
});

describe('@connectrpc/connect as a foreign client', () => {
  it('submits, watches and reads with createClient over the Connect transport', async () => {
    stack = await startHttpStack();
    await stack.worker();
    const client = clientOf(createConnectTransport({ baseUrl: stack.baseUrl, httpVersion: '1.1' }));
    const input = { typeUrl: 'type.googleapis.com/demo.v1.SleepRequest', value: new Uint8Array([8, 100, 16, 2]) }; // duration_ms 100, steps 2
    const submitted = await client.submitTask({ type: '/demo.v1.DemoService/Sleep', input });
    const id = submitted.task.id as string;
    const seen: string[] = [];
    for await (const event of client.watchTask({ id }) ) {
      seen.push(event.event.case === 'progress' ? `progress ${event.event.value.message}` : `task ${event.event.value.state}`);
    }
    expect(seen[0]).toMatch(/^task \d$/);
    expect(seen).toContain('progress step 2 of 2');
    expect(seen.at(-1)).toBe(`task ${TaskState.TASK_STATE_SUCCEEDED}`);
    const got = await client.getTask({ id });
    expect(got.task.output.typeUrl).toBe('type.googleapis.com/demo.v1.SleepResponse');
    const error = await client.retryTask({ id }).catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
  });
});

describe('deadlines and callers that go away', () => {
  it('turns connect-timeout-ms into the task’s deadline: DEADLINE_EXCEEDED, the task cancelled', async () => {
    const { s, aborted } = await sleepyStack();
    stack = s;
    const call = await postJson(s.baseUrl, '/demo.v1.DemoService/Sleep', { durationMs: 10_000 }, { 'connect-timeout-ms': '300' });
    expect([call.status, call.json.code]).toEqual([504, 'deadline_exceeded']);
    await aborted.promise; // the handler's AbortSignal fired
    const id = call.headers.get('taskwire-task-id')!;
    await waitFor(async () => (await stateOf(s.baseUrl, id)) === 'TASK_STATE_CANCELLED', { what: 'the task cancelled' });
  });

  it('cancels the task when the HTTP client goes away', async () => {
    const { s, started, aborted } = await sleepyStack();
    stack = s;
    const controller = new AbortController();
    const call = fetch(`${s.baseUrl}/demo.v1.DemoService/Sleep`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ durationMs: 10_000 }),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await started.promise;
    controller.abort();
    expect(await call).toBeInstanceOf(Error);
    await aborted.promise;
    const [task] = (await s.client().list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    expect(task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });

  it('ends waiting calls UNAVAILABLE on shutdown and leaves their tasks to run', async () => {
    const { s, started } = await sleepyStack();
    const call = postJson(s.baseUrl, '/demo.v1.DemoService/Sleep', { durationMs: 10_000 }, { 'taskwire-idempotency-key': 'k1' });
    await started.promise;
    const [task] = (await s.client().list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    const stopped = s.server.shutdown();
    const answer = await call;
    expect([answer.status, answer.json.code]).toEqual([503, 'unavailable']);
    expect(answer.json.message).toMatch(/shutting down/);
    await stopped;
    await s.stop();
    expect(task?.state).toBe(TaskState.TASK_STATE_RUNNING);
  });
});

describe('CORS', () => {
  const preflight = (baseUrl: string, origin: string) =>
    fetch(`${baseUrl}/taskwire.v1.TaskService/GetTask`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' },
    });

  it('is off by default: no CORS headers, preflights refused', async () => {
    stack = await startHttpStack();
    const answer = await preflight(stack.baseUrl, 'https://app.example');
    expect(answer.status).toBe(405);
    expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    const call = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', {}, { origin: 'https://app.example' });
    expect(call.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('lets listed origins in, with our headers, and only them', async () => {
    stack = await startHttpStack({ httpCorsOrigins: ['https://app.example'] });
    const allowed = await preflight(stack.baseUrl, 'https://app.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(allowed.headers.get('access-control-allow-methods')).toMatch(/POST/);
    const other = await preflight(stack.baseUrl, 'https://evil.example');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();

    const call = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', {}, { origin: 'https://app.example' });
    expect(call.json).toEqual({ status: 'SERVING' });
    expect(call.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(call.headers.get('access-control-expose-headers')).toMatch(/Taskwire-Task-Id/);
    const fromElsewhere = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', {}, { origin: 'https://evil.example' });
    expect(fromElsewhere.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('Connect GET (checked, for when the read methods can be marked)', () => {
  /** gen/descriptor.binpb with the given TaskService methods marked idempotency_level = NO_SIDE_EFFECTS. */
  function markedDescriptorSet(methods: readonly string[]): Uint8Array {
    const set = fromBinary(FileDescriptorSetSchema, readFileSync('gen/descriptor.binpb'));
    const file = set.file.find((f) => f.name === 'taskwire/v1/task_service.proto')!;
    for (const method of file.service[0]!.method) {
      if (methods.includes(method.name)) method.options = create(MethodOptionsSchema, { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS });
    }
    return toBinary(FileDescriptorSetSchema, set);
  }

  it('serves GET for a unary method marked NO_SIDE_EFFECTS, and never for a server stream', async () => {
    // The proto cannot mark them yet (buf breaking: RPC_SAME_IDEMPOTENCY_LEVEL); a descriptor set given to the server can.
    stack = await startHttpStack({ descriptorSet: markedDescriptorSet(['GetTask', 'WatchTask']) });
    const submitted = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/SubmitTask', { type: '/demo.v1.DemoService/Echo', input: ECHO_INPUT });
    const id = submitted.json.task.id as string;
    const message = encodeURIComponent(JSON.stringify({ id }));
    const get = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/GetTask?encoding=json&message=${message}`);
    expect(get.status).toBe(200);
    expect(((await get.json()) as { task: { id: string; input: unknown } }).task).toMatchObject({ id, input: ECHO_INPUT });
    const watch = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/WatchTask?encoding=json&message=${message}`);
    expect(watch.status).toBe(415); // a stream has no GET form: nothing matches
    const list = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/ListTasks?encoding=json&message=%7B%7D`);
    expect(list.status).toBe(405); // not marked here
  });
});
