import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack, unpack } from '../../src/client/index.js';
import { startStack } from '../helpers/inprocess.js';

const ECHO = '/demo.v1.DemoService/Echo';
let stack: Awaited<ReturnType<typeof startStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

describe('submit → worker → result', () => {
  it('runs an echo task and returns its output', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'w1' });
    const client = stack.client();
    const { id } = await client.submit(ECHO, pack(EchoRequest, { text: 'hello' }));
    const outcome = await client.result(id);
    expect(outcome.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(unpack(EchoResponse, outcome.output)).toMatchObject({ text: 'hello', workerId: 'w1' });
    const task = await client.get(id);
    expect(task.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(task.attempt).toBe(1);
  });

  it('answers a run of an idempotency key whose task already ended with that outcome', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'w1' });
    const client = stack.client();
    const first = await client.run(ECHO, pack(EchoRequest, { text: 'once' }), { idempotencyKey: 'run-twice' });
    const again = await client.run(ECHO, pack(EchoRequest, { text: 'once' }), { idempotencyKey: 'run-twice' });
    expect(first.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(again.taskId).toBe(first.taskId);
    expect(again.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(unpack(EchoResponse, again.output)).toEqual(unpack(EchoResponse, first.output));
  });
});
