import { afterEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { postJson, startHttpStack } from './helpers.js';

let stack: Awaited<ReturnType<typeof startHttpStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const ECHO_INPUT = { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text: 'over http' };
const call = (method: string, body: unknown) => postJson(stack!.baseUrl, `/taskwire.v1.TaskService/${method}`, body);

describe('queue controls over the HTTP listener (Connect JSON)', () => {
  it('pauses, resumes, deletes and purges like gRPC', async () => {
    stack = await startHttpStack();
    await stack.worker();
    expect((await call('PauseQueue', { queue: 'h' })).json).toEqual({ changed: true });
    expect((await call('PauseQueue', { queue: 'h' })).json).toEqual({});
    const submitted = await call('SubmitTask', { type: '/demo.v1.DemoService/Echo', input: ECHO_INPUT, options: { queue: 'h' } });
    const id = submitted.json.task.id as string;
    expect((await call('GetQueueStats', { queue: 'h' })).json.queues).toEqual([expect.objectContaining({ queue: 'h', queued: '1', paused: true })]);

    const refused = await call('DeleteTask', { id });
    expect([refused.status, refused.json.code, refused.json.message]).toEqual([400, 'failed_precondition', expect.stringContaining('QUEUED')]);

    expect((await call('ResumeQueue', { queue: 'h' })).json).toEqual({ changed: true });
    expect((await stack.client().result(id)).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect((await call('DeleteTask', { id })).json).toEqual({});
    expect((await call('GetTask', { id })).json.code).toBe('not_found');

    const done = await stack.client().run('/demo.v1.DemoService/Echo', { typeUrl: ECHO_INPUT['@type'], value: Buffer.alloc(0) }, { queue: 'h' });
    expect(done.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    const early = await call('PurgeQueue', { queue: 'h', states: ['TASK_STATE_SUCCEEDED'], finishedBefore: '2000-01-01T00:00:00Z' });
    expect(early.json).toEqual({});
    expect((await call('PurgeQueue', { queue: 'h', states: ['TASK_STATE_SUCCEEDED'] })).json).toEqual({ deleted: '1' });
    const bad = await call('PurgeQueue', { queue: 'h', states: ['TASK_STATE_RUNNING'] });
    expect([bad.status, bad.json.code, bad.json.message]).toEqual([400, 'invalid_argument', expect.stringContaining('states[0] is RUNNING')]);
  });
});
