import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { CLI, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { createNetwork, type Network } from './netns.js';

/**
 * Faults, with the server, workers and clients as separate processes in
 * network namespaces of their own. After each scenario, an audit over the
 * store: every acknowledged task terminal, none lost, no result applied
 * twice (the stored output must come from the task's final attempt), and
 * how often a task or the same attempt ran more than once.
 */
const LEASE_MS = 2_000;
const PORT = 50_051;

interface Row {
  scenario: string;
  tasks: number;
  lost: number;
  appliedTwice: number;
  executedMoreThanOnce: number;
  sameAttemptTwice: number;
  recoverySeconds: number;
}
const table: Row[] = [];
// recoverySeconds: from the end of the fault (the last kill, the restart, the heal) until every task is terminal.

interface Run {
  net: Network;
  dir: string;
  procs: Proc[];
  server(): Promise<Proc>;
  worker(name: string): Proc;
  client(script: 'producer' | 'gateway-client', count: number, run: string): Proc;
}

let current: Run | undefined;

function setup(): Run {
  const net = createNetwork(['srv', 'w1', 'w2', 'cli']);
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-faults-'));
  const procs: Proc[] = [];
  const address = `${net.address('srv')}:${PORT}`;
  const env = { TASKWIRE_DEMO_EXECUTION_LOG: join(dir, 'executions.log') };
  const run: Run = {
    net,
    dir,
    procs,
    async server() {
      const proc = net.node('srv', [CLI, 'server', '--listen', address, '--db', join(dir, 'tasks.db'), '--lease-ms', String(LEASE_MS), '--grace-ms', '2000']);
      procs.push(proc);
      await proc.waitForLine((l) => l.msg === 'listening');
      return proc;
    },
    worker(name) {
      const proc = net.node(name, [CLI, '--server', address, 'worker', '--demo', '--worker-id', name, '--concurrency', '16', '--grace-ms', '1000'], env);
      procs.push(proc);
      return proc;
    },
    client(script, count, id) {
      const proc = net.node('cli', ['--import', 'tsx', join(import.meta.dirname, `${script}.ts`), address, String(count), id]);
      procs.push(proc);
      return proc;
    },
  };
  current = run;
  return run;
}

afterEach(async ({ task }) => {
  if (current === undefined) return;
  if (task.result?.state === 'fail') {
    // What each process said last, for a failure that only shows now and then.
    for (const proc of current.procs) {
      console.error(`--- ${proc.child.spawnargs.slice(-12).join(' ')}\n${proc.lines.slice(-25).map((line) => JSON.stringify(line)).join('\n')}`);
    }
  }
  await Promise.all(current.procs.map((p) => p.kill()));
  current.net.destroy();
  rmSync(current.dir, { recursive: true, force: true });
  current = undefined;
});

afterAll(() => {
  const header = '| scenario | tasks | lost | applied twice | executed more than once | same attempt twice | recovery s |';
  const lines = table.map(
    (r) => `| ${r.scenario} | ${r.tasks} | ${r.lost} | ${r.appliedTwice} | ${r.executedMoreThanOnce} | ${r.sameAttemptTwice} | ${r.recoverySeconds.toFixed(1)} |`,
  );
  console.log(['', 'fault suite', header, '|---|---:|---:|---:|---:|---:|---:|', ...lines, ''].join('\n'));
});

/** Waits until the server has welcomed these workers (a fault must hit a worker that holds work). */
async function connected(server: Proc, ...workers: string[]): Promise<void> {
  for (const worker of workers) await server.waitForLine((l) => l.msg === 'worker connected' && l.workerId === worker, 30_000);
}

const acked = (proc: Proc) => new Map(proc.lines.flatMap((l) => (l.acked as Array<[string, string]> | undefined) ?? []));

/** Waits until every acknowledged task is terminal, then audits the store and records a row. */
async function audit(run: Run, scenario: string, ids: Map<string, string>, faultEnded: number): Promise<Row> {
  const db = () => new Database(join(run.dir, 'tasks.db'), { readonly: true });
  await waitFor(
    () => {
      const sqlite = db();
      try {
        const left = sqlite
          .prepare(
            `SELECT state, attempt, lease_owner IS NOT NULL AS leased, MIN(run_at) - ? AS due_ms, MIN(lease_expires_at) - ? AS lease_ms, COUNT(*) AS n
             FROM tasks WHERE state IN (1, 2, 3) GROUP BY 1, 2, 3`,
          )
          .all(Date.now(), Date.now()) as Array<Record<string, number>>;
        // Thrown, so that a timeout says which tasks were left, and their timers.
        if (left.length > 0) throw new Error(`tasks not terminal (state, attempt, leased, due in ms, lease in ms, count): ${JSON.stringify(left.map((row) => Object.values(row)))}`);
        return true;
      } finally {
        sqlite.close();
      }
    },
    { what: `every task terminal after ${scenario}`, timeoutMs: 90_000, intervalMs: 250 },
  );
  const recoverySeconds = (Date.now() - faultEnded) / 1000;
  const sqlite = db();
  const rows = new Map(
    (sqlite.prepare('SELECT id, state, attempt, output FROM tasks').all() as Array<{ id: string; state: number; attempt: number; output: Buffer | null }>).map(
      (r) => [r.id, r],
    ),
  );
  sqlite.close();
  let lost = 0;
  let appliedTwice = 0;
  for (const [key, id] of ids) {
    const row = rows.get(id);
    if (row === undefined || row.state !== TaskState.TASK_STATE_SUCCEEDED || row.output === null) {
      lost++;
      continue;
    }
    const output = EchoResponse.decode(row.output);
    if (output.text !== key || output.attempt !== row.attempt) appliedTwice++;
  }
  const log = join(run.dir, 'executions.log');
  const executions = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : [];
  const perTask = new Map<string, number>();
  const perAttempt = new Map<string, number>();
  for (const line of executions) {
    const [id, attempt] = line.split(' ');
    perTask.set(id!, (perTask.get(id!) ?? 0) + 1);
    perAttempt.set(`${id} ${attempt}`, (perAttempt.get(`${id} ${attempt}`) ?? 0) + 1);
  }
  const row: Row = {
    scenario,
    tasks: ids.size,
    lost,
    appliedTwice,
    executedMoreThanOnce: [...perTask.values()].filter((n) => n > 1).length,
    sameAttemptTwice: [...perAttempt.values()].filter((n) => n > 1).length,
    recoverySeconds,
  };
  table.push(row);
  return row;
}

function expectClean(row: Row, tasks: number) {
  expect(row.tasks).toBe(tasks);
  expect(row.lost).toBe(0);
  expect(row.appliedTwice).toBe(0);
}

describe('fault suite', () => {
  it('kill -9 of a worker, three times', async () => {
    const run = setup();
    await run.server();
    let victim = run.worker('w1');
    run.worker('w2');
    const producer = run.client('producer', 3_000, 'kill');
    for (let round = 1; round <= 3; round++) {
      await waitFor(() => acked(producer).size >= round * 800, { what: `${round * 800} acks`, timeoutMs: 60_000 });
      await victim.kill();
      victim = run.worker('w1');
    }
    const lastFault = Date.now();
    await producer.waitForLine((l) => l.done === true, 60_000);
    expectClean(await audit(run, 'worker kill -9 ×3', acked(producer), lastFault), 3_000);
  });

  it('kill -9 of the server, twice, each followed by a restart on the same database', async () => {
    const run = setup();
    let server = await run.server();
    run.worker('w1');
    run.worker('w2');
    const producer = run.client('producer', 3_000, 'srv');
    for (let round = 1; round <= 2; round++) {
      await waitFor(() => acked(producer).size >= round * 1_000, { what: `${round * 1_000} acks`, timeoutMs: 60_000 });
      await server.kill();
      server = await run.server();
    }
    const lastFault = Date.now();
    await producer.waitForLine((l) => l.done === true, 90_000);
    expectClean(await audit(run, 'server kill -9 ×2 + restart', acked(producer), lastFault), 3_000);
  });

  it('SIGSTOP of a worker past its lease, then SIGCONT', async () => {
    const run = setup();
    const server = await run.server();
    const frozen = run.worker('w1');
    run.worker('w2');
    await connected(server, 'w1', 'w2');
    const producer = run.client('producer', 2_000, 'stop');
    await waitFor(() => acked(producer).size >= 500, { what: '500 acks', timeoutMs: 60_000 });
    frozen.signal('SIGSTOP');
    await server.waitForLine((l) => l.msg === 'worker disconnected' && l.workerId === 'w1', 15_000);
    frozen.signal('SIGCONT');
    const healed = Date.now();
    await producer.waitForLine((l) => l.done === true, 60_000);
    expectClean(await audit(run, 'worker SIGSTOP past lease, SIGCONT', acked(producer), healed), 2_000);
  });

  it('a silent partition between a worker and the server', async () => {
    const run = setup();
    const server = await run.server();
    run.worker('w1');
    run.worker('w2');
    await connected(server, 'w1', 'w2');
    const producer = run.client('producer', 2_000, 'part');
    await waitFor(() => acked(producer).size >= 500, { what: '500 acks', timeoutMs: 60_000 });
    run.net.partition('w1');
    await server.waitForLine((l) => l.msg === 'worker disconnected' && l.workerId === 'w1', 15_000);
    run.net.heal('w1');
    const healed = Date.now();
    await producer.waitForLine((l) => l.done === true, 60_000);
    expectClean(await audit(run, 'worker partitioned past lease, healed', acked(producer), healed), 2_000);
  });

  it('10% packet loss on a worker link', async () => {
    const run = setup();
    await run.server();
    run.net.loss('w1', 10);
    run.worker('w1');
    run.worker('w2');
    const started = Date.now();
    const producer = run.client('producer', 2_000, 'loss');
    await producer.waitForLine((l) => l.done === true, 90_000);
    const row = await audit(run, '10% loss on a worker link (from start)', acked(producer), started);
    run.net.heal('w1');
    expectClean(row, 2_000);
  });

  it('a server restart while gateway calls and WatchTask streams wait', async () => {
    const run = setup();
    let server = await run.server();
    const caller = run.client('gateway-client', 50, 'gw');
    await waitFor(() => acked(caller).size === 50, { what: 'the 50 gateway calls to be queued', timeoutMs: 30_000 });
    server.signal('SIGTERM');
    expect(await server.exited).toBe(0);
    server = await run.server();
    const restarted = Date.now();
    run.worker('w1');
    await caller.waitForLine((l) => l.done === true, 60_000);
    expectClean(await audit(run, 'server restart under waiting gateway calls and watches', acked(caller), restarted), 50);
  });
});
