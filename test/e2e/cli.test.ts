import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, startCli, startServerProcess, startWorkerProcess, type LogLine, type Proc } from '../helpers/processes.js';

/** The CLI as a user meets it: spellings of a task type, waiting, watching without a terminal, errors. */

let procs: Proc[] = [];
let dir: string;

afterEach(async () => {
  await killAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
});

async function server() {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-cli-'));
  const started = await startServerProcess(join(dir, 'tasks.db'));
  procs.push(started.proc);
  return started.address;
}

async function worker(address: string) {
  const proc = startWorkerProcess(address, 'cli-worker');
  procs.push(proc);
  await proc.waitForLine((l) => l.msg === 'connected');
}

const text = (l: LogLine) => (typeof l.msg === 'string' && Object.keys(l).length === 1 ? l.msg : JSON.stringify(l));

/** Runs the CLI to its exit (bounded): exit code, stdout and stderr lines. */
async function cli(args: readonly string[], timeoutMs = 15_000) {
  const proc = startCli(args);
  procs.push(proc);
  const out: string[] = [];
  const err: string[] = [];
  proc.child.stdout!.on('data', (b: Buffer) => out.push(b.toString()));
  proc.child.stderr!.on('data', (b: Buffer) => err.push(b.toString()));
  const timer = setTimeout(() => proc.signal('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout: out.join(''), stderr: err.join(''), proc };
}

describe('taskwire submit', () => {
  it.each(['/demo.v1.DemoService/Echo', 'demo.v1.DemoService/Echo', 'demo.v1.DemoService.Echo'])('takes the type as %s', async (type) => {
    const address = await server();
    await worker(address);
    const { code, stdout, stderr } = await cli(['--server', address, 'submit', type, '{"text": "spelled"}', '--wait']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/SUCCEEDED {2}\/demo\.v1\.DemoService\/Echo/);
    expect(stdout).toContain('"text":"spelled"');
    expect(stderr).toMatch(/^task \S+: waiting for its result/);
  });

  it('--wait says the id at once, and that no worker serves the type, then gets the result once one connects', async () => {
    const address = await server();
    const proc = startCli(['--server', address, 'submit', 'demo.v1.DemoService.Echo', '{"text": "later"}', '--wait']);
    procs.push(proc);
    const first = await proc.waitForLine((l) => text(l).startsWith('task '));
    expect(text(first)).toMatch(/^task [0-9a-f-]{36}: waiting/);
    await proc.waitForLine((l) => text(l).includes('no connected worker serves /demo.v1.DemoService/Echo'));
    await worker(address);
    await proc.waitForLine((l) => text(l).includes('SUCCEEDED'));
    expect(await proc.exited).toBe(0);
  });

  it('rejects a type it cannot read, naming the spellings it takes', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-cli-'));
    const { code, stderr } = await cli(['--server', '127.0.0.1:9', 'submit', 'Echo']);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/demo\.v1\.DemoService\/Echo, demo\.v1\.DemoService\/Echo or demo\.v1\.DemoService\.Echo/);
  });
});

describe('taskwire watch without a terminal', () => {
  it('prints a line per state change and the task in full; a failed task exits non-zero and says so', async () => {
    const address = await server();
    const submitted = await cli(['--server', address, 'submit', '/demo.v1.DemoService/Fail', '{"failAttempts": 1, "message": "once"}']);
    const id = submitted.stdout.trim();
    const watching = startCli(['--server', address, 'watch', id]);
    procs.push(watching);
    await watching.waitForLine((l) => text(l).startsWith(`${id}  QUEUED`));
    await worker(address);
    expect(await watching.exited).toBe(0);
    const lines = watching.lines.map(text);
    expect(lines.some((l) => l.startsWith(`${id}  RUNNING`))).toBe(true);
    expect(lines).toContain(`${id}  SUCCEEDED  /demo.v1.DemoService/Fail`);
    expect(lines.some((l) => l.includes('error (attempt 1, UNKNOWN): once'))).toBe(true);

    const failing = await cli(['--server', address, 'submit', '/demo.v1.DemoService/Fail', '{"permanent": true, "message": "never"}', '--wait']);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/task \S+ FAILED: never/);
    const failedId = /task (\S+) FAILED/.exec(failing.stderr)![1]!;
    const watched = await cli(['--server', address, 'watch', failedId]);
    expect(watched.code).toBe(1);
    expect(watched.stderr).toContain(`task ${failedId} FAILED: never`);
  });
});

describe('get and list', () => {
  it('show priority, attempts and times', async () => {
    const address = await server();
    await worker(address);
    const { stdout: id } = await cli(['--server', address, 'submit', '/demo.v1.DemoService/Echo', '{}', '--priority', '9']);
    await cli(['--server', address, 'watch', id.trim()]);
    const got = await cli(['--server', address, 'get', id.trim()]);
    expect(got.stdout).toMatch(/priority 9 {2}attempt 1 of 3/);
    expect(got.stdout).toMatch(/created \d{4}-\d\d-\d\dT.*started .*finished /);
    const listed = await cli(['--server', address, 'list']);
    expect(listed.stdout).toMatch(new RegExp(`${id.trim()} {2}SUCCEEDED +/demo.v1.DemoService/Echo {2}attempt 1/3 {2}priority 9 {2}queue default {2}created \\d{4}-`));
  });
});

describe('errors', () => {
  it('with --json are JSON', async () => {
    const address = await server();
    const { code, stderr } = await cli(['--json', '--server', address, 'get', 'no-such-task']);
    expect(code).toBe(1);
    expect(JSON.parse(stderr)).toEqual({ error: { code: 'NOT_FOUND', message: expect.stringContaining('no-such-task') } });
  });

  it('a server out of reach is one human line', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-cli-'));
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    await new Promise((resolve) => holder.close(resolve)); // a port that was free a moment ago: nothing listens
    const refused = await cli(['--server', `127.0.0.1:${port}`, 'list']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`taskwire: cannot reach taskwire at 127.0.0.1:${port}: connection refused (is the server running, on that port?)\n`);
  });
});
