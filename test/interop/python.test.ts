import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { startStack } from '../helpers/inprocess.js';
import { Proc } from '../helpers/processes.js';
import { deferred, waitFor } from '../helpers/wait.js';

const root = resolve(import.meta.dirname, '../..');
const PYTHON = '/usr/bin/python3';
const env = { ...process.env, PYTHONPATH: `${root}/gen/python:${root}/examples/python`, PYTHONUNBUFFERED: '1' };

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
let procs: Proc[] = [];
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  procs = [];
  await stack?.stop();
  stack = undefined;
});

async function pythonClient(address: string, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(PYTHON, [`${root}/examples/python/client.py`, '--server', address, ...args], { env, timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

function pythonWorker(address: string, ...args: string[]): Proc {
  const proc = new Proc(spawn(PYTHON, [`${root}/examples/python/worker.py`, '--server', address, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  procs.push(proc);
  return proc;
}

describe('Python and TypeScript, through one server', () => {
  it('a Python client’s gateway call returns the TypeScript worker’s result', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'ts-worker' });
    const result = await pythonClient(stack.address, 'gateway', '--text', 'hi from python');
    expect(result).toMatchObject({ text: 'hi from python', worker_id: 'ts-worker' });
    expect((await stack.client().get(String(result.task_id))).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
  });

  it('a TypeScript worker serves a task submitted from Python through TaskService', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'ts-worker' });
    const result = await pythonClient(stack.address, 'submit', '--text', 'queued from python');
    expect(result).toMatchObject({ state: 'TASK_STATE_SUCCEEDED', text: 'queued from python', worker_id: 'ts-worker' });
  });

  it('a Python worker serves tasks submitted from TypeScript', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker', '--slots', '4');
    await worker.waitForLine((line) => String(line.msg).includes('connected as py-worker'));
    const demo = stack.client().service(DemoServiceDefinition);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => demo.echo.call({ text: `ts ${i}` })));
    results.forEach((result, i) => expect(result).toMatchObject({ text: `ts ${i}`, workerId: 'py-worker' }));
  });

  it('cancelling a task frees the Python worker’s slot for the next one', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker', '--slots', '1');
    await worker.waitForLine((line) => String(line.msg).includes('connected as py-worker'));
    const client = stack.client();
    const demo = client.service(DemoServiceDefinition);
    const long = await demo.sleep.submit({ durationMs: 60_000 });
    await waitFor(async () => (await client.get(long.id)).state === TaskState.TASK_STATE_RUNNING, { what: 'the sleep to start' });
    await long.cancel('not needed');
    expect(await demo.echo.call({ text: 'next' }, { deadline: 10_000 })).toMatchObject({ text: 'next', workerId: 'py-worker' });
  });

  it('a Python client’s 200 ms deadline on a 5 s task ends DEADLINE_EXCEEDED and aborts the handler', async () => {
    stack = await startStack();
    const aborted = deferred<number>();
    await stack.worker({}, (d) => ({
      ...d,
      async sleep(request, ctx) {
        ctx.signal.addEventListener('abort', () => aborted.resolve(Date.now()), { once: true });
        return d.sleep(request, ctx);
      },
    }));
    const started = Date.now();
    const result = await pythonClient(stack.address, 'sleep', '--ms', '5000', '--deadline-ms', '200');
    expect(result.code).toBe('DEADLINE_EXCEEDED');
    expect((await aborted.promise) - started).toBeLessThan(4_000);
    const [task] = (await stack.client().list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    expect(task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });
});
