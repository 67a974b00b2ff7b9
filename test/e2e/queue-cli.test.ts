import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, startCli, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/** pause, resume, stats, delete and purge as an operator types them, against a server and worker process. */

let procs: Proc[] = [];
let dir: string;

afterEach(async () => {
  await killAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI to its exit (bounded): exit code, stdout and stderr. */
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
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('taskwire pause, resume, delete and purge', () => {
  it('hold a queue while a worker waits, show it in stats, then run, delete and purge', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-queue-cli-'));
    const server = await startServerProcess(join(dir, 'tasks.db'));
    procs.push(server.proc);
    const at = ['--server', server.address];
    const worker = startWorkerProcess(server.address, 'queue-cli-worker');
    procs.push(worker);
    await worker.waitForLine((l) => l.msg === 'connected');

    expect(await cli([...at, 'pause', 'held'])).toMatchObject({ code: 0, stdout: 'queue held paused\n' });
    expect(await cli([...at, 'pause', 'held'])).toMatchObject({ code: 0, stdout: 'queue held was already paused\n' });
    const submitted = await cli([...at, '--json', 'submit', 'demo.v1.DemoService.Echo', '{"text": "held"}', '--queue', 'held']);
    expect(submitted.code).toBe(0);
    const id = (JSON.parse(submitted.stdout) as { id: string }).id;

    const stats = await cli([...at, 'stats']);
    expect(stats.stdout).toMatch(/^held PAUSED: scheduled 0, queued 1, running 0/m);

    const early = await cli([...at, 'delete', id]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('is QUEUED; only SUCCEEDED, FAILED or CANCELLED tasks can be deleted');

    expect(await cli([...at, 'resume', 'held'])).toMatchObject({ code: 0, stdout: 'queue held resumed\n' });
    await waitFor(async () => (await cli([...at, 'get', id])).stdout.includes('SUCCEEDED'), {
      timeoutMs: 60_000,
      what: 'the held task to run after the resume',
    });
    expect((await cli([...at, 'stats'])).stdout).toMatch(/^held: scheduled 0, queued 0, running 0, succeeded 1/m);

    expect(await cli([...at, 'delete', id])).toMatchObject({ code: 0, stdout: `task ${id} deleted\n` });
    const gone = await cli([...at, 'delete', id]);
    expect([gone.code, gone.stderr]).toEqual([1, expect.stringContaining(`no task with id "${id}"`)]);

    await cli([...at, 'submit', 'demo.v1.DemoService.Echo', '{"text": "purged"}', '--queue', 'held', '--wait']);
    expect(await cli([...at, 'purge', 'held', '--state', 'failed,cancelled', '--older-than', '1h'])).toMatchObject({
      code: 0,
      stdout: '0 tasks deleted from held\n',
    });
    const purged = await cli([...at, '--json', 'purge', 'held', '--state', 'succeeded']);
    expect([purged.code, JSON.parse(purged.stdout)]).toEqual([0, { queue: 'held', deleted: 1 }]);
  }, 180_000);

  it('refuses a bad queue name or state with one line naming it, and exits non-zero', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-queue-cli-'));
    const server = await startServerProcess(join(dir, 'tasks.db'));
    procs.push(server.proc);
    const badQueue = await cli(['--server', server.address, 'pause', 'no spaces']);
    expect([badQueue.code, badQueue.stderr]).toEqual([1, expect.stringContaining('queue "no spaces" must be 1..128 characters')]);
    const badState = await cli(['--server', server.address, 'purge', 'q', '--state', 'queued']);
    expect(badState.code).not.toBe(0);
    expect(badState.stderr).toContain("option '--state <states>' argument 'queued' is invalid. give succeeded, failed or cancelled");
    const badAge = await cli(['--server', server.address, 'purge', 'q', '--older-than', 'soon']);
    expect(badAge.code).not.toBe(0);
    expect(badAge.stderr).toContain("--older-than <duration>");
  }, 60_000);
});
