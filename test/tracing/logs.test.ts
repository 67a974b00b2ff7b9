import { Metadata } from 'nice-grpc';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoServiceDefinition, EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { pack } from '../../src/client/index.js';
import { traceIdOf } from '../../src/metrics/tracing.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';

/** The server's log lines, as JSON, from a real server on real sockets. */
const lines: Array<Record<string, unknown>> = [];
/** The worker's, its handlers' ctx.log included. */
const workerLines: Array<Record<string, unknown>> = [];
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
let stack: Awaited<ReturnType<typeof startStack>>;
let channel: ReturnType<typeof createRpcChannel>;

beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  stack = await startStack({ logger, httpListen: '127.0.0.1:0' });
  const workerLogger = pino({ level: 'info' }, { write: (line: string) => void workerLines.push(JSON.parse(line) as Record<string, unknown>) });
  await stack.worker({ logger: workerLogger }, (defaults) => ({
    ...defaults,
    echo: (request, ctx) => {
      ctx.log.info({ text: request.text }, 'handler ran');
      return defaults.echo(request, ctx);
    },
  }));
  channel = createRpcChannel(stack.address);
});

afterAll(async () => {
  channel?.close();
  await stack?.stop();
});

/** The "call" line of one method whose fields include `where`, waited for (a line is written as the call ends). */
const callLine = (method: string, where: Record<string, unknown> = {}) =>
  waitFor(
    () => lines.find((l) => l.method === method && Object.entries(where).every(([k, v]) => l[k] === v)),
    { what: `the log line of ${method} with ${JSON.stringify(where)}` },
  );

describe('the server’s log lines name the task and its trace', () => {
  it('submit, get, cancel and retry over gRPC: task_id always, trace_id when the task carries a trace context', async () => {
    const tasks = createRpcClient(TaskServiceDefinition, channel);
    const traced = await tasks.submitTask({
      type: '/demo.v1.DemoService/Echo',
      input: pack(EchoRequest, { text: 'traced' }),
      options: { traceContext: { traceparent: TRACEPARENT } },
    });
    const id = traced.task!.id;
    expect(await callLine('/taskwire.v1.TaskService/SubmitTask', { task_id: id })).toMatchObject({ msg: 'call', code: 'OK', trace_id: TRACE_ID });
    // The handler's ctx.log names the same task and trace.
    expect(await waitFor(() => workerLines.find((l) => l.msg === 'handler ran' && l.text === 'traced'), { what: 'the handler’s line' })).toMatchObject({
      task_id: id,
      trace_id: TRACE_ID,
      attempt: 1,
    });

    await tasks.getTask({ id });
    expect(await callLine('/taskwire.v1.TaskService/GetTask', { task_id: id })).toMatchObject({ code: 'OK', trace_id: TRACE_ID });

    const plain = await tasks.submitTask({ type: '/demo.v1.DemoService/Sleep', input: pack(EchoRequest, {}) }).catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(Error); // a Sleep needs a SleepRequest: refused, and logged without a task
    const refused = await callLine('/taskwire.v1.TaskService/SubmitTask', { code: 'INVALID_ARGUMENT' });
    expect(refused.task_id).toBeUndefined();

    const untraced = await tasks.submitTask({ type: '/demo.v1.DemoService/Echo', input: pack(EchoRequest, { text: 'plain' }) });
    const line = await callLine('/taskwire.v1.TaskService/SubmitTask', { task_id: untraced.task!.id });
    expect(line.trace_id).toBeUndefined();
    const handled = await waitFor(() => workerLines.find((l) => l.msg === 'handler ran' && l.text === 'plain'), { what: 'the handler’s line' });
    expect(handled).toMatchObject({ task_id: untraced.task!.id });
    expect(handled.trace_id).toBeUndefined();

    // An unknown task: the line names the id asked for.
    await expect(tasks.cancelTask({ id: 'no-such-task' })).rejects.toThrow();
    expect(await callLine('/taskwire.v1.TaskService/CancelTask', { task_id: 'no-such-task' })).toMatchObject({ code: 'NOT_FOUND' });
    await expect(tasks.retryTask({ id: id })).rejects.toThrow(); // not failed or cancelled: refused, still named
    expect(await callLine('/taskwire.v1.TaskService/RetryTask', { task_id: id })).toMatchObject({ code: 'FAILED_PRECONDITION' });
  });

  it('a gateway call: the task it made and the caller’s traceparent', async () => {
    const demo = createRpcClient(DemoServiceDefinition, channel);
    const headers = Metadata({ traceparent: TRACEPARENT });
    let taskId: string | undefined;
    await demo.echo({ text: 'via gateway' }, { metadata: headers, onHeader: (header) => (taskId = header.get('taskwire-task-id')) });
    expect(taskId).toBeDefined();
    expect(await callLine('/demo.v1.DemoService/Echo', { task_id: taskId })).toMatchObject({ code: 'OK', trace_id: TRACE_ID });
  });

  it('over the HTTP listener too', async () => {
    const tasks = createRpcClient(TaskServiceDefinition, channel);
    const { task } = await tasks.submitTask({
      type: '/demo.v1.DemoService/Echo',
      input: pack(EchoRequest, { text: 'http' }),
      options: { traceContext: { traceparent: TRACEPARENT } },
    });
    const response = await fetch(`http://127.0.0.1:${stack.server.httpPort}/taskwire.v1.TaskService/GetTask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: task!.id, view: 'TASK_VIEW_BASIC' }),
    });
    expect(response.status).toBe(200);
    expect(await callLine('/taskwire.v1.TaskService/GetTask', { task_id: task!.id })).toMatchObject({ code: 'OK', trace_id: TRACE_ID });
  });

  it('reads a trace id only from a well-formed traceparent', () => {
    expect(traceIdOf({ traceparent: TRACEPARENT })).toBe(TRACE_ID);
    expect(traceIdOf({ traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` })).toBeUndefined();
    expect(traceIdOf({ traceparent: 'garbage' })).toBeUndefined();
    expect(traceIdOf({ tracestate: 'a=b' })).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
  });
});
