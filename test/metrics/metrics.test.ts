import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, FailRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { createClient, pack, type TaskwireClient } from '../../src/client/index.js';
import { killAll, startCli, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { scrape, total } from './scrape.js';

const ECHO = '/demo.v1.DemoService/Echo';
const FAIL = '/demo.v1.DemoService/Fail';
const SLEEP = '/demo.v1.DemoService/Sleep';
const S = TaskState;

let procs: Proc[] = [];
let client: TaskwireClient | undefined;
let dir: string | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await killAll(procs);
  procs = [];
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const metricsPort = async (proc: Proc) => (await proc.waitForLine((l) => l.msg === 'serving metrics at /metrics')).port as number;

function audit(db: string) {
  const sqlite = new Database(db, { readonly: true });
  try {
    return sqlite.prepare('SELECT state, failures, attempt FROM tasks').all() as Array<{ state: number; failures: number; attempt: number }>;
  } finally {
    sqlite.close();
  }
}

describe('metrics of a server and a worker against what the store says happened', () => {
  it('counts submits, successes, retries and dead letters as the store recorded them', async () => {
    dir = mkdtempSync(join(tmpdir(), 'taskwire-metrics-'));
    const db = join(dir, 'tasks.db');
    const server = await startServerProcess(db, '127.0.0.1:0', ['--metrics-listen', '127.0.0.1:0']);
    procs.push(server.proc);
    const serverMetrics = await metricsPort(server.proc);
    const worker = startWorkerProcess(server.address, 'w1', ['--concurrency', '8', '--metrics-listen', '127.0.0.1:0']);
    procs.push(worker);
    const workerMetrics = await metricsPort(worker);
    client = createClient({ server: server.address });
    const c = client;
    await waitFor(async () => (await c.workers()).length === 1, { what: 'the worker' });

    const backoff = { initialMs: 10, maxMs: 20 };
    const items = [
      ...Array.from({ length: 150 }, (_, i) => ({ type: ECHO, input: pack(EchoRequest, { text: `t${i}` }) })),
      // Fail twice, then succeed: two retries each.
      ...Array.from({ length: 20 }, () => ({ type: FAIL, input: pack(FailRequest, { failAttempts: 2 }), options: { maxAttempts: 5, backoff } })),
      // Fail every attempt: two retries, then the dead letter.
      ...Array.from({ length: 10 }, () => ({ type: FAIL, input: pack(FailRequest, { failAttempts: 0 }), options: { maxAttempts: 3, backoff } })),
      ...Array.from({ length: 5 }, () => ({ type: SLEEP, input: pack(SleepRequest, { durationMs: 300 }), options: { queue: 'slow' } })),
    ];
    const submitted = await c.submitMany(items);

    // During the run: the gauges account for every task submitted, whatever state each is in.
    const during = await scrape(serverMetrics);
    expect(total(during, 'taskwire_tasks')).toBe(items.length);
    expect(total(during, 'taskwire_tasks_submitted_total')).toBe(items.length);

    await Promise.all(submitted.map((s) => c.result(s.id)));
    const server1 = await scrape(serverMetrics);
    // The worker counts its result once it is sent; the server's acknowledgement may lag: wait for it.
    const rows = audit(db);
    const succeeded = rows.filter((r) => r.state === S.TASK_STATE_SUCCEEDED).length;
    const failed = rows.filter((r) => r.state === S.TASK_STATE_FAILED).length;
    const failures = rows.reduce((sum, r) => sum + r.failures, 0);
    expect(rows).toHaveLength(items.length);
    expect(succeeded).toBe(175);
    expect(failed).toBe(10);
    expect(failures).toBe(20 * 2 + 10 * 3);

    expect(total(server1, 'taskwire_tasks_submitted_total')).toBe(rows.length);
    expect(total(server1, 'taskwire_tasks_finished_total', { state: 'succeeded' })).toBe(succeeded);
    expect(total(server1, 'taskwire_tasks_finished_total', { state: 'failed' })).toBe(failed);
    expect(total(server1, 'taskwire_tasks_dead_lettered_total')).toBe(failed);
    expect(total(server1, 'taskwire_tasks_retried_total')).toBe(failures - failed);
    expect(total(server1, 'taskwire_tasks_retried_total', { type: FAIL })).toBe(failures - failed);
    expect(total(server1, 'taskwire_tasks', { state: 'succeeded' })).toBe(succeeded);
    expect(total(server1, 'taskwire_tasks', { state: 'failed' })).toBe(failed);
    expect(total(server1, 'taskwire_tasks', { queue: 'slow', state: 'succeeded' })).toBe(5);
    expect(total(server1, 'taskwire_tasks', { state: 'queued' }) + total(server1, 'taskwire_tasks', { state: 'running' })).toBe(0);
    // Every attempt that started was timed from due to start, and from start to end.
    const attempts = rows.reduce((sum, r) => sum + r.attempt, 0);
    expect(total(server1, 'taskwire_task_queue_wait_seconds_count')).toBe(attempts);
    expect(total(server1, 'taskwire_task_run_seconds_count')).toBe(attempts);
    expect(total(server1, 'taskwire_task_run_seconds_count', { queue: 'slow', outcome: 'succeeded' })).toBe(5);
    expect(total(server1, 'taskwire_task_run_seconds_sum', { queue: 'slow' })).toBeGreaterThanOrEqual(5 * 0.3);
    expect(total(server1, 'taskwire_store_commit_seconds_count')).toBeGreaterThan(0);
    expect(total(server1, 'taskwire_workers_connected')).toBe(1);
    expect(total(server1, 'taskwire_connected_worker_slots', { use: 'total' })).toBe(8);
    expect(total(server1, 'taskwire_rpc_requests_total', { method: '/taskwire.v1.TaskService/ListWorkers', code: 'OK' })).toBeGreaterThan(0);
    expect(total(server1, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    // Open streams: the worker's Connect and the client's Session.
    const streams = (samples: typeof server1, service: string) => total(samples, 'taskwire_rpc_streams_open', { method: `/taskwire.v1.${service}` });
    expect(streams(server1, 'WorkerService/Connect')).toBe(1);
    expect(streams(server1, 'TaskService/Session')).toBe(1);

    const workerSamples = await waitFor(
      async () => {
        const samples = await scrape(workerMetrics);
        return total(samples, 'taskwire_worker_tasks_total') === attempts ? samples : undefined;
      },
      { what: 'the worker to count every attempt' },
    );
    expect(total(workerSamples, 'taskwire_worker_tasks_total', { outcome: 'succeeded' })).toBe(succeeded);
    expect(total(workerSamples, 'taskwire_worker_tasks_total', { outcome: 'failed' })).toBe(failures);
    expect(total(workerSamples, 'taskwire_worker_handler_seconds_count', { type: SLEEP })).toBe(5);
    expect(total(workerSamples, 'taskwire_worker_slots', { use: 'total' })).toBe(8);
    expect(total(workerSamples, 'taskwire_worker_reconnects_total')).toBe(0);

    // GetQueueStats answers from the same counts.
    const stats = await c.stats();
    const byQueue = new Map(stats.map((q) => [q.queue, q]));
    expect(byQueue.get('slow')?.succeeded).toBe(5);
    expect(byQueue.get('default')?.failed).toBe(10);
    expect(byQueue.get('default')?.submittedPerSecond).toBeCloseTo(180 / 60, 5);
    expect(byQueue.get('default')?.oldestQueuedAge).toEqual({ seconds: 0, nanos: 0 });
    const cli = startCli(['--server', server.address, 'stats', '--queue', 'slow']);
    procs.push(cli);
    expect(await cli.exited).toBe(0);
    expect(String(cli.lines[0]?.msg)).toMatch(/^slow: .*succeeded 5.*oldest queued 0 s; per second over the last minute: submitted 0\.08, succeeded 0\.08, failed 0$/);

    // The client goes away: its Session closes, the worker's stream stays.
    client = undefined;
    c.close();
    await waitFor(async () => streams(await scrape(serverMetrics), 'TaskService/Session') === 0, { what: 'the Session stream to close' });
    expect(streams(await scrape(serverMetrics), 'WorkerService/Connect')).toBe(1);
  });

  it('refuses a bad --metrics-listen with one line naming the flag', async () => {
    const proc = startCli(['server', '--listen', '127.0.0.1:0', '--metrics-listen', 'nowhere']);
    procs.push(proc);
    expect(await proc.exited).not.toBe(0);
    const text = proc.lines.map((l) => l.msg ?? '').join('\n');
    expect(text).toMatch(/--metrics-listen/);
  });
});
