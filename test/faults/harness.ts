import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { CLI, type LogLine, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { createNetwork, type Network } from './netns.js';

/**
 * What the fault scenarios share: processes in network namespaces of their
 * own, and the audit over the store a scenario ends with — every
 * acknowledged task terminal, none lost, no result applied twice (the stored
 * output must come from the task's final attempt), how often a task or the
 * same attempt ran more than once, and what the faults cost: attempts
 * burned (a demo Echo or Sleep never fails by itself, so every failed
 * attempt was a fault's), and after each server restart, how long until
 * every worker was back and until the first task completed.
 */
export const PORT = 50_051;

export interface Row {
  scenario: string;
  tasks: number;
  lost: number;
  appliedTwice: number;
  executedMoreThanOnce: number;
  sameAttemptTwice: number;
  /** Failed attempts of acknowledged tasks: each one a fault's, not the task's. */
  burned: number;
  /** The longest, over the scenario's server restarts, from listening to the last worker connected. */
  reconnectSeconds?: number;
  /** The longest, over the scenario's server restarts, from listening to the first task completed. */
  firstCompletedSeconds?: number;
  /** From the end of the fault (the last kill, the restart, the heal) until every task is terminal. */
  recoverySeconds: number;
}

export const table: Row[] = [];

export interface RunOptions {
  readonly leaseMs?: number;
  /** Where the database lives (a small tmpfs for the disk-full scenario). */
  readonly dbDir?: string;
  readonly concurrency?: number;
}

export interface Run {
  readonly net: Network;
  readonly dir: string;
  readonly db: string;
  readonly procs: Proc[];
  /** The servers started after the first, for the restart figures. */
  readonly restarts: Proc[];
  readonly workers: string[];
  server(): Promise<Proc>;
  /** A demo worker; with `module`, one serving that worker module (TypeScript, run under tsx) instead, with `env` added. */
  worker(name: string, module?: { readonly path: string; readonly env: NodeJS.ProcessEnv }): Proc;
  client(script: string, ...args: Array<string | number>): Proc;
}

export function setup(options: RunOptions = {}): Run {
  const net = createNetwork(['srv', 'w1', 'w2', 'cli']);
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-faults-'));
  const db = join(options.dbDir ?? dir, 'tasks.db');
  const procs: Proc[] = [];
  const address = `${net.address('srv')}:${PORT}`;
  const env = { TASKWIRE_DEMO_EXECUTION_LOG: join(dir, 'executions.log') };
  let servers = 0;
  const run: Run = {
    net,
    dir,
    db,
    procs,
    restarts: [],
    workers: [],
    async server() {
      const proc = net.node('srv', [CLI, 'server', '--listen', address, '--db', db, '--lease-ms', String(options.leaseMs ?? 2_000), '--grace-ms', '2000']);
      procs.push(proc);
      if (servers++ > 0) run.restarts.push(proc);
      await proc.waitForLine((l) => l.msg === 'listening');
      return proc;
    },
    worker(name, module) {
      const serve = module === undefined ? [CLI, '--server', address, 'worker', '--demo'] : ['--import', 'tsx', CLI, '--server', address, 'worker', module.path];
      const settings = ['--worker-id', name, '--concurrency', String(options.concurrency ?? 16), '--grace-ms', '1000'];
      const proc = net.node(name, [...serve, ...settings], { ...env, ...module?.env });
      procs.push(proc);
      if (!run.workers.includes(name)) run.workers.push(name);
      return proc;
    },
    client(script, ...args) {
      const proc = net.node('cli', ['--import', 'tsx', join(import.meta.dirname, `${script}.ts`), address, ...args.map(String)]);
      procs.push(proc);
      return proc;
    },
  };
  return run;
}

/** Kills what the run started and removes its namespaces and files; prints the last words of each process if asked. */
export async function teardown(run: Run, failed: boolean): Promise<void> {
  if (failed) {
    for (const proc of run.procs) {
      console.error(`--- ${proc.child.spawnargs.slice(-12).join(' ')}\n${proc.lines.slice(-25).map((line) => JSON.stringify(line)).join('\n')}`);
    }
  }
  await Promise.all(run.procs.map((p) => p.kill()));
  run.net.destroy();
  rmSync(run.dir, { recursive: true, force: true });
}

const seconds = (value: number | undefined) => (value === undefined ? '—' : value.toFixed(1));

export function printTable(title: string): void {
  const header = '| scenario | tasks | lost | applied twice | executed more than once | same attempt twice | attempts burned | workers back s | first completed s | recovery s |';
  const lines = table.map(
    (r) =>
      `| ${r.scenario} | ${r.tasks} | ${r.lost} | ${r.appliedTwice} | ${r.executedMoreThanOnce} | ${r.sameAttemptTwice} | ${r.burned} | ${seconds(r.reconnectSeconds)} | ${seconds(r.firstCompletedSeconds)} | ${r.recoverySeconds.toFixed(1)} |`,
  );
  console.log(['', title, header, '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|', ...lines, ''].join('\n'));
}

/** Waits until the server has welcomed these workers (a fault must hit a worker that holds work). */
export async function connected(server: Proc, ...workers: string[]): Promise<void> {
  for (const worker of workers) await server.waitForLine((l) => l.msg === 'worker connected' && l.workerId === worker, 30_000);
}

/** The [key, task id] pairs a client script printed as acknowledged. */
export const acked = (proc: Proc) => new Map(proc.lines.flatMap((l) => (l.acked as Array<[string, string]> | undefined) ?? []));

const time = (line: LogLine | undefined) => (line === undefined ? undefined : (line.time as number));

/** Waits until every acknowledged task is terminal, then audits the store and records a row. */
export async function audit(run: Run, scenario: string, ids: Map<string, string>, faultEnded: number, timeoutMs = 90_000): Promise<Row> {
  const db = () => new Database(run.db, { readonly: true });
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
    { what: `every task terminal after ${scenario}`, timeoutMs, intervalMs: 250 },
  );
  const recoverySeconds = (Date.now() - faultEnded) / 1000;
  const sqlite = db();
  const rows = new Map(
    (
      sqlite.prepare('SELECT id, state, attempt, failures, output FROM tasks').all() as Array<{
        id: string;
        state: number;
        attempt: number;
        failures: number;
        output: Buffer | null;
      }>
    ).map((r) => [r.id, r]),
  );
  const firstFinished = sqlite.prepare('SELECT MIN(finished_at) FROM tasks WHERE state = ? AND finished_at >= ?').pluck();
  let reconnectSeconds: number | undefined;
  let firstCompletedSeconds: number | undefined;
  for (const server of run.restarts) {
    const listening = time(server.lines.find((l) => l.msg === 'listening'))!;
    const back = run.workers.map((w) => time(server.lines.find((l) => l.msg === 'worker connected' && l.workerId === w)));
    if (back.every((t) => t !== undefined)) reconnectSeconds = Math.max(reconnectSeconds ?? 0, (Math.max(...back) - listening) / 1000);
    const first = firstFinished.get(TaskState.TASK_STATE_SUCCEEDED, listening) as number | null;
    if (first !== null) firstCompletedSeconds = Math.max(firstCompletedSeconds ?? 0, (first - listening) / 1000);
  }
  sqlite.close();

  let lost = 0;
  let appliedTwice = 0;
  let burned = 0;
  let slowRerun = 0;
  for (const [key, id] of ids) {
    const row = rows.get(id);
    if (row === undefined || row.state !== TaskState.TASK_STATE_SUCCEEDED || row.output === null) {
      lost++;
      burned += row?.failures ?? 0;
      continue;
    }
    burned += row.failures;
    if (key.startsWith('sleep-')) {
      if (row.attempt > 1) slowRerun++;
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
    executedMoreThanOnce: [...perTask.values()].filter((n) => n > 1).length + slowRerun,
    sameAttemptTwice: [...perAttempt.values()].filter((n) => n > 1).length,
    burned,
    ...(reconnectSeconds === undefined ? {} : { reconnectSeconds }),
    ...(firstCompletedSeconds === undefined ? {} : { firstCompletedSeconds }),
    recoverySeconds,
  };
  table.push(row);
  return row;
}

export function expectClean(row: Row, tasks: number) {
  expect(row.tasks).toBe(tasks);
  expect(row.lost).toBe(0);
  expect(row.appliedTwice).toBe(0);
}
