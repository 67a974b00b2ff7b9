import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { WORKER_RECONNECT_MAX_MS } from '../../src/broker/sweeper.js';
import { createClient, pack, type TaskwireClient } from '../../src/client/index.js';
import { killAll, startCli, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const SLEEP = '/demo.v1.DemoService/Sleep';
const S = TaskState;

let procs: Proc[] = [];
let clients: TaskwireClient[] = [];
let dir: string;

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await killAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
});

async function server(db: string, listen: string, leaseMs: number) {
  const proc = startCli(['server', '--listen', listen, '--db', db, '--lease-ms', String(leaseMs), '--grace-ms', '1000']);
  procs.push(proc);
  const line = await proc.waitForLine((l) => l.msg === 'listening');
  return { proc, address: `127.0.0.1:${line.port as number}` };
}

/** Resolves once `proc` has logged `count` lines matching `match`. */
function lines(proc: Proc, match: (line: Record<string, unknown>) => boolean, count: number, what: string) {
  return waitFor(() => proc.lines.filter(match).length >= count, { timeoutMs: 20_000, what });
}

describe('server restarts', () => {
  it('a server killed with SIGKILL twice, down 2 s each, costs a healthy task no attempt', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-restart-'));
    const db = join(dir, 'tasks.db');
    const leaseMs = 5000;
    let current = await server(db, '127.0.0.1:0', leaseMs);
    const address = current.address;
    const worker = startWorkerProcess(address, 'steady', ['--concurrency', '1']);
    procs.push(worker);
    const c = createClient({ server: address });
    clients.push(c);
    await waitFor(async () => (await c.workers()).length === 1, { what: 'the worker' });
    const { id } = await c.submit(SLEEP, pack(SleepRequest, { durationMs: 20_000 }));
    await waitFor(async () => (await c.get(id)).state === S.TASK_STATE_RUNNING, { what: 'the task to run' });

    for (let restart = 1; restart <= 2; restart++) {
      await current.proc.kill();
      // Down for 2 s: a real outage, not a wait for something to happen.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      current = await server(db, address, leaseMs);
      await lines(current.proc, (l) => l.msg === 'worker connected' && l.resumed === 1, 1, 'the worker to come back and resume its attempt');
    }

    const outcome = await c.result(id, { signal: AbortSignal.timeout(30_000) });
    expect(outcome.state).toBe(S.TASK_STATE_SUCCEEDED);
    const task = await c.get(id);
    expect(task.attempt).toBe(1);
    expect(task.errors).toEqual([]);
  }, 60_000);

  it('hands back, without counting a failure, an attempt whose worker died with the server and never came back', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-restart-'));
    const db = join(dir, 'tasks.db');
    const leaseMs = 2000;
    const first = await server(db, '127.0.0.1:0', leaseMs);
    const doomed = startWorkerProcess(first.address, 'doomed', ['--concurrency', '1']);
    procs.push(doomed);
    const c = createClient({ server: first.address });
    clients.push(c);
    await waitFor(async () => (await c.workers()).length === 1, { what: 'the worker' });
    const { id } = await c.submit(SLEEP, pack(SleepRequest, { durationMs: 60_000 }));
    await waitFor(async () => (await c.get(id)).state === S.TASK_STATE_RUNNING, { what: 'the task to run' });
    await Promise.all([first.proc.kill(), doomed.kill()]);

    const second = await server(db, first.address, leaseMs);
    const started = Date.now();
    await second.proc.waitForLine((l) => l.msg === 'leases expired with no server renewing them: attempts handed back to the queue, not counted as failures', 20_000);
    // Not before the grace a start gives the workers of the previous life: a lease plus their reconnect cap.
    expect(Date.now() - started).toBeGreaterThanOrEqual(leaseMs + WORKER_RECONNECT_MAX_MS - 300);
    const task = await c.get(id);
    expect([task.state, task.attempt, task.errors.length]).toEqual([S.TASK_STATE_QUEUED, 1, 0]);
  }, 30_000);
});
