import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { createSqliteStore } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';
import { join } from 'node:path';

const ECHO = '/demo.v1.DemoService/Echo';
let stack: Awaited<ReturnType<typeof startStack>> | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

describe('lifecycle', () => {
  it('a worker reports the package version in its hello', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    stack = await startStack();
    await stack.worker({ workerId: 'versioned' });
    const [info] = await waitFor(() => stack!.server.workers().length === 1 && stack!.server.workers(), { what: 'the worker' });
    expect(info!.version).toBe(version);
    const [listed] = await stack.client().workers();
    expect(listed!.version).toBe(version);
  });

  it('shutdown() leaves open a store the caller passed in, and the caller can go on using it', async () => {
    const scratch = await startStack();
    const store = createSqliteStore({ path: join(scratch.dir, 'own.db') });
    stack = await startStack({ store });
    await stack.worker();
    const outcome = await stack.client().run(ECHO, pack(EchoRequest, { text: 'kept' }));
    expect(outcome.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    await stack.stop();
    stack = undefined;
    // Still open: the caller owns it.
    expect((await store.get(outcome.taskId))?.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    await store.close();
    await scratch.stop();
  });

  it('the server offers its counters and serving state instead of its broker', async () => {
    stack = await startStack();
    expect(stack.server.counters).toMatchObject({ staleResults: 0, refusedResults: 0, workersLost: 0 });
    expect(stack.server.serving).toBe(true);
    const stopping = stack.server.shutdown();
    expect(stack.server.serving).toBe(false);
    await stopping;
  });
});
