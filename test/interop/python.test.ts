import { execFile, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { tokenAuth } from '../../src/server/index.js';
import { startStack } from '../helpers/inprocess.js';
import { Proc } from '../helpers/processes.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { installPythonPackage, type PythonPackage } from './python-package.js';

const root = resolve(import.meta.dirname, '../..');
const ECHO = '/demo.v1.DemoService/Echo';

let py: PythonPackage;
beforeAll(async () => {
  py = await installPythonPackage();
}, 120_000);
afterAll(() => py?.dispose());

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
let procs: Proc[] = [];
afterEach(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  procs = [];
  await stack?.stop();
  stack = undefined;
});

async function pythonClient(address: string, ...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(py.python, [`${root}/examples/python/client.py`, '--server', address, ...args], { env: py.env, timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

function python(script: string, ...args: string[]): Proc {
  const proc = new Proc(spawn(py.python, [script, ...args], { env: py.env, stdio: ['ignore', 'pipe', 'pipe'] }));
  procs.push(proc);
  return proc;
}

const pythonWorker = (address: string, ...args: string[]) => python(`${root}/examples/python/worker.py`, '--server', address, ...args);
const caseWorker = (address: string, name: string) => python(`${root}/test/interop/fixtures/worker_cases.py`, '--server', address, '--case', name);
const connected = (id: string) => (line: { msg?: string }) => String(line.msg).includes(`connected as ${id}`);

describe('the Python package', () => {
  it('passes its own unit tests (python/tests) as installed', async () => {
    const { stderr } = await promisify(execFile)(py.python, ['-m', 'unittest', 'discover', '-s', `${root}/python/tests`], { env: py.env, cwd: tmpdir(), timeout: 60_000 });
    expect(stderr).toMatch(/^Ran [1-9]\d* tests? in/m);
    expect(stderr.trim().split('\n').at(-1)).toBe('OK');
  });

  it('is imported from the install, not from the source tree', async () => {
    const { stdout } = await promisify(execFile)(py.python, ['-c', 'import taskwire, taskwire.v1.task_pb2 as t; print(taskwire.__file__); print(t.__file__)'], { env: py.env, cwd: tmpdir() });
    for (const line of stdout.trim().split('\n')) expect(line).toMatch(/\/venv\/lib\/python3[^/]*\/site-packages\/taskwire\//);
  });
});

describe('the Python package’s client against TypeScript workers', () => {
  it('a gateway call returns the TypeScript worker’s result', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'ts-worker' });
    const result = await pythonClient(stack.address, 'gateway', '--text', 'hi from python');
    expect(result).toMatchObject({ text: 'hi from python', worker_id: 'ts-worker' });
    expect((await stack.client().get(String(result.task_id))).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
  });

  it('a task submitted with a typed input comes back as the typed output', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'ts-worker' });
    const result = await pythonClient(stack.address, 'submit', '--text', 'queued from python');
    expect(result).toMatchObject({ state: 'TASK_STATE_SUCCEEDED', text: 'queued from python', worker_id: 'ts-worker' });
  });

  it('cancelling a running task from Python aborts the TypeScript handler and ends the task CANCELLED', async () => {
    stack = await startStack();
    const aborted = deferred<string>();
    await stack.worker({}, (d) => ({
      ...d,
      async sleep(request, ctx) {
        ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.taskId), { once: true });
        return d.sleep(request, ctx);
      },
    }));
    const result = await pythonClient(stack.address, 'cancel', '--ms', '60000');
    expect(result).toMatchObject({ state: 'CANCELLED', reason: 'cancelled from python' });
    expect(await aborted.promise).toBe(result.task_id);
  });

  it('the asyncio client submits, watches progress, waits, calls the gateway and cancels', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'ts-worker' });
    const { stdout } = await promisify(execFile)(py.python, [`${root}/test/interop/fixtures/async_client.py`, '--server', stack.address], { env: py.env, timeout: 60_000 });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(result).toMatchObject({ text: 'async', worker_id: 'ts-worker', sleep_state: 'TASK_STATE_SUCCEEDED', gateway_text: 'async gateway', cancelled: 'cancelled from asyncio' });
    // Progress is best effort (the server keeps at most one report per 100 ms), but over 1.5 s some arrive.
    const progress = result.progress as number[];
    expect(progress.length).toBeGreaterThan(0);
    for (const percent of progress) expect([33, 67, 100]).toContain(Math.round(percent));
    expect((await stack.client().get(String(result.gateway_task_id))).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
  });

  it('a 200 ms deadline on a 5 s task ends DEADLINE_EXCEEDED and aborts the handler', async () => {
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

describe('the Python package’s worker against TypeScript clients', () => {
  it('serves tasks submitted from TypeScript, typed both ways', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker', '--slots', '4');
    await worker.waitForLine(connected('py-worker'));
    const demo = stack.client().service(DemoServiceDefinition);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => demo.echo.call({ text: `ts ${i}` })));
    results.forEach((result, i) => expect(result).toMatchObject({ text: `ts ${i}`, workerId: 'py-worker', attempt: 1 }));
  });

  it('a handler’s TaskError reaches the task with its code; retries count attempts', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker');
    await worker.waitForLine(connected('py-worker'));
    const demo = stack.client().service(DemoServiceDefinition);
    expect(await demo.fail.call({ failAttempts: 1 }, { maxAttempts: 3, backoff: { initialMs: 10 } })).toEqual({ attempt: 2 });
    const permanent = await demo.fail.submit({ permanent: true, code: 9, message: 'not today' }, { maxAttempts: 5 });
    await expect(permanent.result()).rejects.toThrow(/not today/);
    const task = await stack.client().get(permanent.id);
    expect(task).toMatchObject({ state: TaskState.TASK_STATE_FAILED, attempt: 1 });
    expect(task.errors.at(-1)).toMatchObject({ code: 9, retryable: false, workerId: 'py-worker' });
  });

  it('progress the handler reports reaches a watcher, the last report 100', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker');
    await worker.waitForLine(connected('py-worker'));
    const client = stack.client();
    const { id } = await client.service(DemoServiceDefinition).sleep.submit({ durationMs: 600, steps: 3 }, { delayMs: 100 });
    const progress: number[] = [];
    for await (const event of client.watch(id)) {
      if (event?.$case === 'progress') progress.push(Math.round(event.value.percent));
    }
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(100);
    expect(await client.get(id)).toMatchObject({ state: TaskState.TASK_STATE_SUCCEEDED, progressPercent: 100, progressMessage: 'step 3 of 3', workerId: 'py-worker' });
  });

  it('with tokens on, serves with a worker token; a client token is refused with the server’s reason', async () => {
    stack = await startStack({
      auth: tokenAuth([
        { role: 'worker', token: 'worker-token' },
        { role: 'client', token: 'client-token' },
      ]),
    });
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker', '--token', 'worker-token');
    await worker.waitForLine(connected('py-worker'));
    expect(await pythonClient(stack.address, '--token', 'client-token', 'submit', '--text', 'with tokens')).toMatchObject({ text: 'with tokens', worker_id: 'py-worker' });
    const refused = pythonWorker(stack.address, '--worker-id', 'not-a-worker', '--token', 'client-token');
    expect(await refused.exited).toBe(1);
    expect(refused.lines.map((l) => l.msg).join('\n')).toMatch(/the server refused this worker \(PERMISSION_DENIED\)/);
  });

  it('cancelling a task cancels the async handler and frees its slot for the next one', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker', '--slots', '1');
    await worker.waitForLine(connected('py-worker'));
    const client = stack.client();
    const demo = client.service(DemoServiceDefinition);
    const long = await demo.sleep.submit({ durationMs: 60_000 });
    await waitFor(async () => (await client.get(long.id)).state === TaskState.TASK_STATE_RUNNING, { what: 'the sleep to start' });
    await long.cancel('not needed');
    expect(await demo.echo.call({ text: 'next' }, { deadline: 10_000 })).toMatchObject({ text: 'next', workerId: 'py-worker' });
  });

  it('a plain (threaded) handler sees the cancel through ctx.wait_cancelled', async () => {
    stack = await startStack();
    const worker = caseWorker(stack.address, 'sync-sleep');
    await worker.waitForLine(connected('case-sync-sleep'));
    const client = stack.client();
    const long = await client.service(DemoServiceDefinition).sleep.submit({ durationMs: 60_000 });
    await waitFor(async () => (await client.get(long.id)).state === TaskState.TASK_STATE_RUNNING, { what: 'the sleep to start' });
    await long.cancel('stop now');
    await worker.waitForLine((line) => String(line.msg).startsWith('sync handler saw cancel: '), 10_000);
  });

  it('a TypeScript caller’s deadline reaches the Python handler, and the slot comes back', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker', '--slots', '1');
    await worker.waitForLine(connected('py-worker'));
    const demo = stack.client().service(DemoServiceDefinition);
    const started = Date.now();
    await expect(demo.sleep.call({ durationMs: 60_000 }, { deadline: 300 })).rejects.toThrow(/DEADLINE_EXCEEDED|deadline/i);
    expect(await demo.echo.call({ text: 'after' }, { deadline: 10_000 })).toMatchObject({ text: 'after', workerId: 'py-worker' });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a handler that returns the wrong message type fails the task for good with INTERNAL', async () => {
    stack = await startStack();
    const worker = caseWorker(stack.address, 'wrong-output');
    await worker.waitForLine(connected('case-wrong-output'));
    const client = stack.client();
    const submitted = await client.service(DemoServiceDefinition).echo.submit({ text: 'x' }, { maxAttempts: 3 });
    await expect(submitted.result()).rejects.toThrow();
    const task = await client.get(submitted.id);
    expect(task).toMatchObject({ state: TaskState.TASK_STATE_FAILED, attempt: 1 });
    expect(task.errors.at(-1)).toMatchObject({ code: 13, retryable: false });
    expect(task.errors.at(-1)?.message).toMatch(/handler of \/demo.v1.DemoService\/Echo returned a value that is a SleepResponse, expected demo.v1.EchoResponse/);
  });

  it('refuses to start while a method of the service has no handler, naming it', async () => {
    stack = await startStack();
    const worker = caseWorker(stack.address, 'missing-handler');
    expect(await worker.exited).toBe(3);
    expect(worker.lines.map((l) => l.msg).join('\n')).toContain('no handler for /demo.v1.DemoService/Fail, /demo.v1.DemoService/Sleep');
    expect(await stack.client().workers()).toEqual([]);
  });

  it('stops with the server’s reason when its Hello is refused (a type the server does not serve)', async () => {
    stack = await startStack();
    const worker = caseWorker(stack.address, 'unknown-type');
    expect(await worker.exited).toBe(3); // the fixture exits 3 on a refusal
    const said = worker.lines.map((l) => l.msg).join('\n');
    expect(said).toContain('the server refused this worker (FAILED_PRECONDITION)');
    expect(said).toContain('/demo.v1.NoSuchService/Echo');
  });

  it('a Python client and a Python worker: submit, result, and a gateway call', async () => {
    stack = await startStack();
    const worker = pythonWorker(stack.address, '--worker-id', 'py-worker');
    await worker.waitForLine(connected('py-worker'));
    expect(await pythonClient(stack.address, 'submit', '--text', 'py to py')).toMatchObject({ text: 'py to py', worker_id: 'py-worker' });
    expect(await pythonClient(stack.address, 'gateway', '--text', 'py gw')).toMatchObject({ text: 'py gw', worker_id: 'py-worker' });
    expect((await stack.client().list({ type: ECHO })).tasks).toHaveLength(2);
  });
});
