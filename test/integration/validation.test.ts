import { ClientError, Status } from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import type { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskServiceDefinition, type SubmitTaskRequest, type TaskOrder } from '../../gen/ts/taskwire/v1/task_service.js';
import { pack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient, type RpcClient } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';

const ECHO = '/demo.v1.DemoService/Echo';
let stack: Awaited<ReturnType<typeof startStack>>;
let rpc: RpcClient<typeof TaskServiceDefinition>;
let close: () => void;

beforeAll(async () => {
  stack = await startStack();
  const channel = createRpcChannel(stack.address);
  rpc = createRpcClient(TaskServiceDefinition, channel);
  close = () => channel.close();
});
afterAll(async () => {
  close();
  await stack.stop();
});

async function status(call: Promise<unknown>): Promise<{ code: Status; details: string }> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClientError);
  return { code: (error as ClientError).code, details: (error as ClientError).details };
}

const echo = (options: Partial<SubmitTaskRequest['options']> = {}): Partial<SubmitTaskRequest> => ({
  type: ECHO,
  input: pack(EchoRequest, { text: 'x' }),
  options: options as SubmitTaskRequest['options'],
});

describe('TaskService rejects bad input with a status and a message that says what to fix', () => {
  it.each([
    ['an unknown type', { ...echo(), type: '/nope.v1.Nope/Do' }, /unknown task type "\/nope.v1.Nope\/Do"/],
    ['a missing type', { ...echo(), type: '' }, /type is required/],
    ['a missing input', { type: ECHO }, /input is required/],
    ['an input of the wrong type', { type: ECHO, input: pack(SleepRequest, {}) }, /takes "type.googleapis.com\/demo.v1.EchoRequest"/],
    ['a negative priority', echo({ priority: -1 }), /priority must be an integer in 0..1000/],
    ['too high a priority', echo({ priority: 5000 }), /priority/],
    ['too many attempts', echo({ maxAttempts: 1000 }), /max_attempts must be in 1..100/],
    ['run_at and delay together', echo({ runAt: new Date(), delay: { seconds: 1, nanos: 0 } }), /run_at or options.delay, not both/],
    ['a bad queue name', echo({ queue: 'has spaces' }), /options.queue/],
    ['a negative delay', echo({ delay: { seconds: -5, nanos: 0 } }), /delay must not be negative/],
    ['too many labels', echo({ labels: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'])) }), /at most 32/],
    ['a huge idempotency key', echo({ idempotencyKey: 'k'.repeat(1000) }), /idempotency_key/],
  ])('SubmitTask with %s → INVALID_ARGUMENT', async (_name, request, message) => {
    const error = await status(rpc.submitTask(request));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toMatch(message);
  });

  it('SubmitTasks: empty, oversized, or one bad entry → INVALID_ARGUMENT, nothing stored', async () => {
    const before = await rpc.listTasks({ pageSize: 1000 });
    expect((await status(rpc.submitTasks({ tasks: [] }))).code).toBe(Status.INVALID_ARGUMENT);
    const oversized = await status(rpc.submitTasks({ tasks: Array.from({ length: 1001 }, () => echo()) }));
    expect(oversized).toMatchObject({ code: Status.INVALID_ARGUMENT, details: expect.stringMatching(/at most 1000/) });
    const mixed = await status(rpc.submitTasks({ tasks: [echo(), echo({ priority: -3 }), echo()] }));
    expect(mixed).toMatchObject({ code: Status.INVALID_ARGUMENT, details: expect.stringMatching(/^tasks\[1\]: /) });
    const after = await rpc.listTasks({ pageSize: 1000 });
    expect(after.tasks.length).toBe(before.tasks.length);
  });

  it('GetTask, WatchTask, CancelTask, RetryTask: a missing id → INVALID_ARGUMENT, an unknown one → NOT_FOUND', async () => {
    expect((await status(rpc.getTask({ id: '' }))).code).toBe(Status.INVALID_ARGUMENT);
    expect((await status(rpc.getTask({ id: 'no-such-task' }))).code).toBe(Status.NOT_FOUND);
    expect((await status(rpc.cancelTask({ id: 'no-such-task' }))).code).toBe(Status.NOT_FOUND);
    expect((await status(rpc.retryTask({ id: 'no-such-task' }))).code).toBe(Status.NOT_FOUND);
    const watch = async () => {
      for await (const _ of rpc.watchTask({ id: 'no-such-task' })) void _;
    };
    expect((await status(watch())).code).toBe(Status.NOT_FOUND);
  });

  it('CancelTask of a terminal task and RetryTask of a live one → FAILED_PRECONDITION', async () => {
    const { task } = await rpc.submitTask(echo());
    const retry = await status(rpc.retryTask({ id: task!.id }));
    expect(retry).toMatchObject({ code: Status.FAILED_PRECONDITION, details: expect.stringMatching(/only FAILED or CANCELLED/) });
    await rpc.cancelTask({ id: task!.id });
    const again = await status(rpc.cancelTask({ id: task!.id }));
    expect(again).toMatchObject({ code: Status.FAILED_PRECONDITION, details: expect.stringMatching(/is CANCELLED/) });
  });

  it('ListTasks: a bad page token, page size or state → INVALID_ARGUMENT', async () => {
    expect((await status(rpc.listTasks({ pageToken: 'not-a-token' }))).details).toMatch(/page_token/);
    expect((await status(rpc.listTasks({ pageSize: 5000 }))).details).toMatch(/page_size must be at most 1000/);
    expect((await status(rpc.listTasks({ state: 99 as TaskState }))).code).toBe(Status.INVALID_ARGUMENT);
  });

  it('ListTasks: bad filters → INVALID_ARGUMENT naming the field', async () => {
    const since = new Date(Date.now() - 1000);
    expect((await status(rpc.listTasks({ state: 5 as TaskState, states: [4 as TaskState] }))).details).toMatch(/set state or states, not both/);
    expect((await status(rpc.listTasks({ states: [99 as TaskState] }))).details).toMatch(/^states has 99/);
    expect((await status(rpc.listTasks({ createdSince: since, createdBefore: since }))).details).toMatch(/created_since must be earlier than created_before/);
    expect((await status(rpc.listTasks({ finishedSince: new Date(-5000) }))).details).toMatch(/finished_since must be a time after 1970/);
    expect((await status(rpc.listTasks({ errorCode: 99 }))).details).toMatch(/error_code must be a google.rpc.Code/);
    expect((await status(rpc.listTasks({ labels: { '': 'x' } }))).details).toMatch(/labels has an empty key/);
    expect((await status(rpc.listTasks({ order: 7 as TaskOrder }))).details).toMatch(/order 7 is not a TaskOrder/);
    const first = await rpc.listTasks({ order: 2, pageSize: 1 });
    if (first.nextPageToken !== '') {
      expect((await status(rpc.listTasks({ pageToken: first.nextPageToken }))).details).toMatch(/page_token continues a listing oldest first/);
    }
  });

  it.each([
    ['no filter', {}, /filter is empty/],
    ['an empty filter', { filter: {} }, /filter is empty/],
    ['a limit over the bound', { filter: { queue: 'q' }, limit: 10_001 }, /limit must be 1..10000/],
    ['a state the action does not apply to', { filter: { states: [2 as TaskState] } }, /filter.states names QUEUED, which this action does not apply to: give only FAILED, CANCELLED/],
    ['a bad state', { filter: { states: [42 as TaskState] } }, /filter.states has 42/],
    ['an empty time range', { filter: { queue: 'q', finishedSince: new Date(2000), finishedBefore: new Date(1000) } }, /filter.finished_since must be earlier than filter.finished_before/],
    ['a bad error code', { filter: { errorCode: -3 } }, /filter.error_code/],
    ['too many labels', { filter: { labels: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) } }, /filter.labels has 17 entries; at most 16/],
  ])('RetryTasks with %s → INVALID_ARGUMENT', async (_name, request, message) => {
    const error = await status(rpc.retryTasks(request));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toMatch(message);
  });

  it('CancelTasks checks the same filter, with its own states', async () => {
    expect((await status(rpc.cancelTasks({}))).details).toMatch(/filter is empty/);
    expect((await status(rpc.cancelTasks({ filter: { states: [5 as TaskState] } }))).details).toMatch(
      /filter.states names FAILED, which this action does not apply to: give only SCHEDULED, QUEUED, RUNNING/,
    );
    expect((await status(rpc.cancelTasks({ filter: { type: ECHO }, limit: 20_000, dryRun: true }))).details).toMatch(/limit must be 1..10000/);
  });

  it('Session: a bad submit gets an error ack and the stream goes on', async () => {
    async function* requests() {
      yield { submits: [{ ref: 1, request: { type: '/nope.v1.Nope/Do', input: pack(EchoRequest, {}) } }, { ref: 2, request: echo() as SubmitTaskRequest }] };
    }
    const acks = [];
    for await (const response of rpc.session(requests())) acks.push(...response.acks);
    expect(acks).toHaveLength(2);
    expect(acks[0]).toMatchObject({ ref: 1, taskId: '', error: { code: Status.INVALID_ARGUMENT } });
    expect(acks[1]!.taskId).not.toBe('');
    expect(acks[1]!.error).toBeUndefined();
  });

  it('Session: following an unknown task id answers NOT_FOUND at once', async () => {
    const error = await stack.client().result('no-such-task').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.NOT_FOUND);
    expect((error as ClientError).details).toMatch(/no task with id "no-such-task"/);
  });

  it('Session: following an empty task id answers INVALID_ARGUMENT at once', async () => {
    const error = await stack.client().result('').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.INVALID_ARGUMENT);
    expect((error as ClientError).details).toMatch(/task id is required/);
  });

  it('keeps the store consistent through all of it', async () => {
    const stats = await rpc.getQueueStats({});
    const all = await rpc.listTasks({ pageSize: 1000 });
    const total = stats.queues.reduce((n, q) => n + q.queued + q.cancelled + q.running + q.succeeded, 0);
    expect(total).toBe(all.tasks.length);
    expect(all.tasks.every((t) => t.type === ECHO)).toBe(true);
  });
});
