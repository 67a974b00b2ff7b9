import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startCli, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/** Bulk retry and cancel and the list filters as a user meets them: a real server, worker and CLI, as child processes. */

const procs: Proc[] = [];
let dir: string;
let address: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-cli-bulk-'));
  const started = await startServerProcess(join(dir, 'tasks.db'));
  procs.push(started.proc);
  address = started.address;
});
afterAll(async () => {
  await killAll(procs);
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: readonly string[], timeoutMs = 15_000) {
  const proc = startCli(['--server', address, ...args]);
  procs.push(proc);
  const out: string[] = [];
  const err: string[] = [];
  proc.child.stdout!.on('data', (b: Buffer) => out.push(b.toString()));
  proc.child.stderr!.on('data', (b: Buffer) => err.push(b.toString()));
  const timer = setTimeout(() => proc.signal('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout: out.join('').trim(), stderr: err.join('').trim() };
}

const count = async (...filter: string[]) => (JSON.parse((await cli(['--json', 'list', '--limit', '1000', ...filter])).stdout) as { tasks: unknown[] }).tasks.length;

describe('taskwire retry and cancel by filter', () => {
  it('retries the failed tasks of a queue since an hour ago, after a dry run, bounded by --limit', async () => {
    for (let i = 0; i < 3; i++) {
      const submitted = await cli(['submit', '/demo.v1.DemoService/Fail', '{"failAttempts": 1, "permanent": true, "code": 14}', '--queue', 'q', '--max-attempts', '1']);
      expect(submitted.code).toBe(0);
    }
    const worker = startWorkerProcess(address, 'bulk-cli-worker');
    procs.push(worker);
    await worker.waitForLine((l) => l.msg === 'connected');
    await waitFor(async () => (await count('--state', 'failed', '--queue', 'q')) === 3, { what: 'three failed tasks', timeoutMs: 60_000, intervalMs: 300 });
    expect(await count('--error-code', 'UNAVAILABLE', '--finished-since', '1h')).toBe(3);

    expect(await cli(['retry', '--state', 'failed', '--queue', 'q', '--since', '1h', '--dry-run'])).toMatchObject({ code: 0, stdout: 'would retry 3 tasks' });
    expect(await cli(['retry', '--state', 'failed', '--queue', 'q', '--since', '1h', '--error-code', 'unavailable', '--limit', '2'])).toMatchObject({
      code: 0,
      stdout: 'retried 2 tasks; more match: run it again',
    });
    expect(JSON.parse((await cli(['--json', 'retry', '--state', 'failed', '--queue', 'q', '--since', '1h'])).stdout)).toEqual({ count: 1, more: false, dryRun: false });
    await waitFor(async () => (await count('--state', 'succeeded', '--queue', 'q')) === 3, { what: 'the retried tasks to succeed', timeoutMs: 60_000, intervalMs: 300 });
  }, 180_000);

  it('cancels scheduled tasks by type; cancel <id> and retry <id> still work', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await cli(['submit', 'demo.v1.DemoService.Sleep', '{"durationMs": 1}', '--queue', 'later', '--delay-ms', '1h'])).stdout);
    expect(await cli(['cancel', ids[0]!, '--reason', 'one'])).toMatchObject({ code: 0, stdout: expect.stringContaining(`${ids[0]}  CANCELLED`) });
    expect(await cli(['cancel', '--type', 'demo.v1.DemoService.Sleep', '--state', 'scheduled,queued', '--dry-run'])).toMatchObject({ code: 0, stdout: 'would cancel 2 tasks' });
    expect(await cli(['cancel', '--type', 'demo.v1.DemoService.Sleep', '--state', 'scheduled'])).toMatchObject({ code: 0, stdout: 'cancelled 2 tasks' });
    expect(await count('--queue', 'later', '--state', 'cancelled')).toBe(3);
    expect(await cli(['retry', ids[1]!])).toMatchObject({ code: 0, stdout: expect.stringContaining(`${ids[1]}  QUEUED`) });

    const oldest = JSON.parse((await cli(['--json', 'list', '--queue', 'later', '--oldest-first'])).stdout) as { tasks: Array<{ id: string }> };
    expect(oldest.tasks.map((t) => t.id)).toEqual(ids);
    expect(await count('--queue', 'later', '--label', 'tenant=none')).toBe(0);
    expect(await count('--queue', 'later', '--before', '2000-01-01T00:00:00Z')).toBe(0);
  }, 180_000);

  it('says what is wrong: an id and a filter, neither, a state the action skips, bad flag values', async () => {
    const neither = await cli(['retry']);
    expect([neither.code, neither.stderr]).toEqual([1, expect.stringContaining('give a task id or at least one filter flag')]);
    const both = await cli(['cancel', 'some-id', '--queue', 'q']);
    expect([both.code, both.stderr]).toEqual([1, expect.stringContaining('not both')]);
    const queued = await cli(['retry', '--state', 'queued']);
    expect([queued.code, queued.stderr]).toEqual([1, expect.stringContaining('filter.states names QUEUED, which this action does not apply to')]);
    for (const [flags, message] of [
      [['retry', '--queue', 'q', '--limit', '20000'], "option '--limit <n>' argument '20000' is invalid. give an integer in 1..10000."],
      [['retry', '--since', 'yesterday'], "option '--since <age|time>' argument 'yesterday' is invalid. give an age"],
      [['cancel', '--label', 'novalue'], "option '--label <key=value>' argument 'novalue' is invalid. give key=value"],
      [['list', '--error-code', '99'], "option '--error-code <code>' argument '99' is invalid. give a status code"],
      [['list', '--state', 'sleeping'], "option '--state <states>' argument 'sleeping' is invalid. give states from"],
    ] as const) {
      const result = await cli(flags);
      expect(result.code, flags.join(' ')).not.toBe(0);
      expect(result.stderr).toContain(message);
    }
  }, 180_000);
});
