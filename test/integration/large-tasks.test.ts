import { ClientError, Status } from 'nice-grpc';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskServiceDefinition, TaskView } from '../../gen/ts/taskwire/v1/task_service.js';
import { pack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';

const ECHO = '/demo.v1.DemoService/Echo';
const MiB = 1024 * 1024;

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
const closers: Array<() => void> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await stack?.stop();
  stack = undefined;
});

/** A TaskService client with the usual 4 MiB receive limit of gRPC clients. */
function usualClient(address: string) {
  const channel = createRpcChannel(address, { maxMessageBytes: 4 * MiB });
  closers.push(() => channel.close());
  return createRpcClient(TaskServiceDefinition, channel);
}

/** A client that may send large inputs. */
function bigClient(address: string) {
  const channel = createRpcChannel(address);
  closers.push(() => channel.close());
  return createRpcClient(TaskServiceDefinition, channel);
}

const big = (mib: number, tag: string) => pack(EchoRequest, { text: tag.repeat(Math.floor((mib * MiB) / tag.length)) });

describe('large tasks on the read path', () => {
  it('answers a submit without echoing the input, and lists without payloads unless asked', async () => {
    stack = await startStack();
    const submitter = bigClient(stack.address);
    const first = await submitter.submitTask({ type: ECHO, input: big(3, 'a') });
    expect(first.task?.input).toBeUndefined();
    expect(first.task?.state).toBe(TaskState.TASK_STATE_QUEUED);
    const second = await submitter.submitTask({ type: ECHO, input: big(3, 'b') });

    const reader = usualClient(stack.address);
    // Two 3 MiB tasks: a BASIC page (the default) carries no payloads, at any page size.
    const basic = await reader.listTasks({ pageSize: 100 });
    expect(basic.tasks.map((t) => t.id)).toEqual([second.task!.id, first.task!.id]);
    expect(basic.tasks.every((t) => t.input === undefined)).toBe(true);
    // FULL: a page stops before passing 4 MiB of payloads and the token carries on from there.
    const page1 = await reader.listTasks({ pageSize: 100, view: TaskView.TASK_VIEW_FULL });
    expect(page1.tasks.map((t) => t.id)).toEqual([second.task!.id]);
    expect(page1.tasks[0]!.input?.value.length).toBeGreaterThan(3 * MiB - 100);
    expect(page1.nextPageToken).not.toBe('');
    const page2 = await reader.listTasks({ pageSize: 100, view: TaskView.TASK_VIEW_FULL, pageToken: page1.nextPageToken });
    expect(page2.tasks.map((t) => t.id)).toEqual([first.task!.id]);
    expect(page2.nextPageToken).toBe('');

    expect((await reader.getTask({ id: first.task!.id, view: TaskView.TASK_VIEW_BASIC })).task?.input).toBeUndefined();
    expect((await reader.getTask({ id: first.task!.id })).task?.input?.value.length).toBeGreaterThan(3 * MiB - 100);
    const badView = await reader.listTasks({ view: 7 as TaskView }).catch((e: unknown) => e);
    expect(badView).toMatchObject({ code: Status.INVALID_ARGUMENT, details: expect.stringMatching(/view 7 is not a TaskView/) });
  });

  it('refuses, as RESOURCE_EXHAUSTED naming the task, a FULL answer larger than a message', async () => {
    stack = await startStack({ maxMessageBytes: 6 * MiB });
    await stack.worker();
    const client = bigClient(stack.address);
    const { task } = await client.submitTask({ type: ECHO, input: big(4, 'c') });
    const outcome = await stack.client().result(task!.id); // Echo answers its input: 4 MiB in, 4 MiB out
    expect(outcome.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    const error = await client.getTask({ id: task!.id }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect(error).toMatchObject({
      code: Status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(new RegExp(`task ${task!.id}'s input and output are \\d+ bytes.*TASK_VIEW_BASIC`)),
    });
    expect((await client.getTask({ id: task!.id, view: TaskView.TASK_VIEW_BASIC })).task?.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
  });
});
