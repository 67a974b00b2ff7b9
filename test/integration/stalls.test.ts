import { afterEach, describe, expect, it } from 'vitest';
import { SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

/** Blocks this process's event loop, as a long synchronous commit or decode does. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: nothing else runs
  }
}

describe('a stall of the server itself', () => {
  it('does not cost a worker its session or its attempt: messages waiting in the socket are read before silence is judged', async () => {
    stack = await startStack({ leaseMs: 500, sweepMs: 50 });
    await stack.worker({ concurrency: 1 });
    const client = stack.client();
    const { id } = await client.submit('/demo.v1.DemoService/Sleep', pack(SleepRequest, { durationMs: 3_000 }));
    await waitFor(async () => (await client.get(id)).state === TaskState.TASK_STATE_RUNNING, { what: 'the task to run' });
    const [before] = await client.workers();
    stall(1_500);
    const outcome = await client.result(id, { signal: AbortSignal.timeout(10_000) });
    expect([outcome.state, outcome.attempt]).toEqual([TaskState.TASK_STATE_SUCCEEDED, 1]);
    const [after] = await client.workers();
    expect(after?.sessionId).toBe(before?.sessionId);
  });
});
