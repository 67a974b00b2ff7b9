import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { tokenAuth } from '../../src/server/index.js';
import { startStack } from '../helpers/inprocess.js';
import { Proc } from '../helpers/processes.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { buildGoModule, type GoModule } from './go-module.js';
import { installPythonPackage, type PythonPackage } from './python-package.js';

const root = resolve(import.meta.dirname, '../..');
const ECHO = '/demo.v1.DemoService/Echo';

let go: GoModule;
let py: PythonPackage;
beforeAll(async () => {
  [go, py] = await Promise.all([buildGoModule(), installPythonPackage()]);
}, 300_000);
afterAll(() => {
  go?.dispose();
  py?.dispose();
});

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
let procs: Proc[] = [];
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  procs = [];
  await stack?.stop();
  stack = undefined;
});

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;

async function goClient(address: string, ...args: string[]) {
  return lastJson((await promisify(execFile)(go.client, ['--server', address, ...args], { timeout: 30_000 })).stdout);
}

async function pythonClient(address: string, ...args: string[]) {
  const { stdout } = await promisify(execFile)(py.python, [`${root}/examples/python/client.py`, '--server', address, ...args], { env: py.env, timeout: 30_000 });
  return lastJson(stdout);
}

function start(proc: Proc): Proc {
  procs.push(proc);
  return proc;
}
const goWorker = (address: string, ...args: string[]) =>
  start(new Proc(spawn(go.worker, ['--server', address, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })));
const pythonWorker = (address: string, ...args: string[]) =>
  start(new Proc(spawn(py.python, [`${root}/examples/python/worker.py`, '--server', address, ...args], { env: py.env, stdio: ['ignore', 'pipe', 'pipe'] })));
const connected = (id: string) => (line: { msg?: string }) => String(line.msg).includes(`connected as ${id} `);

describe('the Go module', () => {
  it('is gofmt-clean, passes go vet and its own tests (GOPATH mode over Debian’s packages)', async () => {
    expect(await go.test()).toMatch(/^ok\s+github.com\/taskwire\/taskwire\/go\s/m);
  });
});

describe('the Go client against a TypeScript worker', () => {
  it('a gateway call and a submitted task return the worker’s typed results', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'ts-worker' });
    const called = await goClient(stack.address, 'gateway', '--text', 'hi from go');
    expect(called).toMatchObject({ text: 'hi from go', worker_id: 'ts-worker' });
    expect((await stack.client().get(String(called.task_id))).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(await goClient(stack.address, 'submit', '--text', 'queued from go')).toMatchObject({ state: 'TASK_STATE_SUCCEEDED', text: 'queued from go', worker_id: 'ts-worker' });
  });

  it('cancelling a running task from Go aborts the TypeScript handler', async () => {
    stack = await startStack();
    const aborted = deferred<string>();
    await stack.worker({}, (d) => ({
      ...d,
      async sleep(request, ctx) {
        ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.taskId), { once: true });
        return d.sleep(request, ctx);
      },
    }));
    const result = await goClient(stack.address, 'cancel', '--ms', '60000');
    expect(result).toMatchObject({ state: 'TASK_STATE_CANCELLED', reason: 'cancelled from go' });
    expect(await aborted.promise).toBe(result.task_id);
  });

  it('a 200 ms deadline on a 5 s task ends DEADLINE_EXCEEDED and cancels the task', async () => {
    stack = await startStack();
    await stack.worker();
    expect(await goClient(stack.address, 'sleep', '--ms', '5000', '--deadline-ms', '200')).toEqual({ code: 'DEADLINE_EXCEEDED' });
    const [task] = (await stack.client().list({ type: '/demo.v1.DemoService/Sleep' })).tasks;
    expect(task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });
});

describe('the Go worker against TypeScript clients', () => {
  it('serves tasks submitted from TypeScript, typed both ways, and reports a handler’s error code', async () => {
    stack = await startStack();
    const worker = goWorker(stack.address, '--worker-id', 'go-worker', '--slots', '4');
    await worker.waitForLine(connected('go-worker'));
    const demo = stack.client().service(DemoServiceDefinition);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => demo.echo.call({ text: `ts ${i}` })));
    results.forEach((result, i) => expect(result).toMatchObject({ text: `ts ${i}`, workerId: 'go-worker', attempt: 1 }));
    expect(await demo.fail.call({ failAttempts: 1 }, { maxAttempts: 3, backoff: { initialMs: 10 } })).toEqual({ attempt: 2 });
    const permanent = await demo.fail.submit({ permanent: true, code: 9, message: 'not today' }, { maxAttempts: 5 });
    await expect(permanent.result()).rejects.toThrow(/not today/);
    const task = await stack.client().get(permanent.id);
    expect(task).toMatchObject({ state: TaskState.TASK_STATE_FAILED, attempt: 1 });
    expect(task.errors.at(-1)).toMatchObject({ code: 9, retryable: false, workerId: 'go-worker' });
  });

  it('progress the handler reports reaches a watcher, the last report 100', async () => {
    stack = await startStack();
    const worker = goWorker(stack.address, '--worker-id', 'go-worker');
    await worker.waitForLine(connected('go-worker'));
    const client = stack.client();
    const { id } = await client.service(DemoServiceDefinition).sleep.submit({ durationMs: 600, steps: 3 }, { delayMs: 100 });
    const progress: number[] = [];
    for await (const event of client.watch(id)) {
      if (event?.$case === 'progress') progress.push(Math.round(event.value.percent));
    }
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(100);
    expect(await client.get(id)).toMatchObject({ state: TaskState.TASK_STATE_SUCCEEDED, progressPercent: 100, progressMessage: 'step 3 of 3', workerId: 'go-worker' });
  });

  it('with tokens on, serves with a worker token; a client token is refused with the server’s reason', async () => {
    stack = await startStack({
      auth: tokenAuth([
        { role: 'worker', token: 'worker-token' },
        { role: 'client', token: 'client-token' },
      ]),
    });
    const worker = goWorker(stack.address, '--worker-id', 'go-worker', '--token', 'worker-token');
    await worker.waitForLine(connected('go-worker'));
    expect(await goClient(stack.address, '--token', 'client-token', 'submit', '--text', 'with tokens')).toMatchObject({ text: 'with tokens', worker_id: 'go-worker' });
    const refused = goWorker(stack.address, '--worker-id', 'not-a-worker', '--token', 'client-token');
    expect(await refused.exited).toBe(1);
    expect(refused.lines.map((l) => l.msg).join('\n')).toMatch(/the server refused this worker \(PERMISSION_DENIED\)/);
  });

  it('cancelling a task cancels the handler’s context and frees its slot', async () => {
    stack = await startStack();
    const worker = goWorker(stack.address, '--worker-id', 'go-worker', '--slots', '1');
    await worker.waitForLine(connected('go-worker'));
    const client = stack.client();
    const demo = client.service(DemoServiceDefinition);
    const long = await demo.sleep.submit({ durationMs: 60_000 });
    await waitFor(async () => (await client.get(long.id)).state === TaskState.TASK_STATE_RUNNING, { what: 'the sleep to start' });
    await long.cancel('not needed');
    expect(await demo.echo.call({ text: 'next' }, { deadline: 10_000 })).toMatchObject({ text: 'next', workerId: 'go-worker' });
  });

  it('a TypeScript caller’s deadline reaches the Go handler, and the slot comes back', async () => {
    stack = await startStack();
    const worker = goWorker(stack.address, '--worker-id', 'go-worker', '--slots', '1');
    await worker.waitForLine(connected('go-worker'));
    const demo = stack.client().service(DemoServiceDefinition);
    await expect(demo.sleep.call({ durationMs: 60_000 }, { deadline: 300 })).rejects.toThrow(/DEADLINE_EXCEEDED|deadline/i);
    expect(await demo.echo.call({ text: 'after' }, { deadline: 10_000 })).toMatchObject({ text: 'after', workerId: 'go-worker' });
  });

  it('stops with the server’s reason when its Hello is refused', async () => {
    stack = await startStack();
    const worker = goWorker(stack.address, '--worker-id', 'bad\u0001id');
    expect(await worker.exited).toBe(1);
    expect(worker.lines.map((l) => l.msg).join('\n')).toMatch(/the server refused this worker \(INVALID_ARGUMENT\): .*worker_id/);
  });
});

describe('Go and Python through the TypeScript server', () => {
  it('a task submitted from Go is run by a Python worker, and one submitted from Python by a Go worker', async () => {
    stack = await startStack();
    const python = pythonWorker(stack.address, '--worker-id', 'py-worker');
    await python.waitForLine(connected('py-worker'));
    const fromGo = await goClient(stack.address, 'submit', '--text', 'from go to python');
    expect(fromGo).toMatchObject({ state: 'TASK_STATE_SUCCEEDED', text: 'from go to python', worker_id: 'py-worker' });
    const viaGateway = await goClient(stack.address, 'gateway', '--text', 'go gateway to python');
    expect(viaGateway).toMatchObject({ text: 'go gateway to python', worker_id: 'py-worker' });
    python.signal('SIGTERM');
    expect(await python.exited).toBe(0);

    const goW = goWorker(stack.address, '--worker-id', 'go-worker');
    await goW.waitForLine(connected('go-worker'));
    const fromPython = await pythonClient(stack.address, 'submit', '--text', 'from python to go');
    expect(fromPython).toMatchObject({ state: 'TASK_STATE_SUCCEEDED', text: 'from python to go', worker_id: 'go-worker' });
    const pyGateway = await pythonClient(stack.address, 'gateway', '--text', 'python gateway to go');
    expect(pyGateway).toMatchObject({ text: 'python gateway to go', worker_id: 'go-worker' });

    const client = stack.client();
    expect((await client.get(String(fromGo.task_id))).workerId).toBe('py-worker');
    expect((await client.get(String(fromPython.task_id))).workerId).toBe('go-worker');
    expect((await client.list({ type: ECHO })).tasks.every((t) => t.state === TaskState.TASK_STATE_SUCCEEDED)).toBe(true);
  });
});
