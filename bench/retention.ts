/**
 * Retention under load (BENCHMARKS.md), on SQLite, server and workers as `taskwire` processes:
 *
 *   npm run bench:retention -- --scenario backlog [--backlog 300000] [--rate 1000] [--duration 30]
 *     submit → result latency at a fixed rate while the cleaner works through
 *     `backlog` expired tasks written into the file before the server starts
 *     (run it with --backlog 0 for the baseline);
 *   npm run bench:retention -- --scenario steady [--n 1000000] [--max-seconds 600] [--retain 5s]
 *     as many tasks as fit, at full speed, with a retention of a few seconds:
 *     every 10 s the tasks/s, the file's size (pages in use and free) and the
 *     server's RSS, which should all level off.
 *
 * Bounded: the steady run stops at --n tasks or --max-seconds, whichever comes first.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { EchoRequest } from '../gen/ts/demo/v1/demo.js';
import { TaskState } from '../gen/ts/taskwire/v1/task.js';
import { createClient, pack } from '../src/client/index.js';
import { createSqliteStore } from '../src/store/index.js';
import { CLI, freePort, percentile, rssMb, startNode, waitForPort } from './lib.js';
import { waitForWorkers } from './targets/taskwire.js';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'backlog' },
    backlog: { type: 'string', default: '300000' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '30' },
    n: { type: 'string', default: '1000000' },
    'max-seconds': { type: 'string', default: '600' },
    retain: { type: 'string', default: '5s' },
    workers: { type: 'string', default: '2' },
    slots: { type: 'string', default: '64' },
    inflight: { type: 'string', default: '2000' },
  },
});
const ECHO = '/demo.v1.DemoService/Echo';
const input = pack(EchoRequest, { payload: Buffer.alloc(100, 'x') });
const emit = (line: Record<string, unknown>) => console.log(JSON.stringify(line));

const dir = mkdtempSync(join(tmpdir(), 'taskwire-retention-'));
const db = join(dir, 'tasks.db');

/** `count` tasks that SUCCEEDED long ago and expired a second ago, written straight into the file. */
function seedBacklog(count: number): void {
  createSqliteStore({ path: db }).close(); // the schema, migrated
  const sqlite = new Database(db);
  const insert = sqlite.prepare(`
    INSERT INTO tasks (id, type, queue, state, priority, input_type, input, max_attempts, backoff, run_at, created_at,
      updated_at, finished_at, attempt, retain_succeeded_ms, retain_failed_ms, retain_cancelled_ms, expires_at, output_type, output)
    VALUES (?, ?, 'default', ${TaskState.TASK_STATE_SUCCEEDED}, 0, ?, ?, 3, '{}', ?, ?, ?, ?, 1, 1000, 1000, 1000, ?, ?, ?)`);
  const now = Date.now();
  sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      const t = now - 10_000 + i / 1000;
      insert.run(`seed-${i}`, ECHO, input.typeUrl, Buffer.from(input.value), t, t, t, t, now - 1_000, 'type.googleapis.com/demo.v1.EchoResponse', Buffer.alloc(100, 'y'));
    }
  })();
  sqlite.close();
}

async function startServer(extra: readonly string[]) {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // At debug the server logs one line per cleaning round (with its longest delete); calls are a few streams.
  const server = startNode('server', [CLI, 'server', '--listen', address, '--db', db, '--log-level', 'debug', ...extra]);
  await waitForPort(port, 60_000);
  const workers = Array.from({ length: Number(values.workers) }, (_, i) =>
    startNode(`worker-${i}`, [CLI, '--server', address, 'worker', '--demo', '--concurrency', values.slots!, '--log-level', 'warn']),
  );
  await waitForWorkers(address, workers.length);
  const client = createClient({ server: address });
  return {
    server,
    client,
    async stop() {
      client.close();
      await Promise.all(workers.map((w) => w.stop()));
      await server.stop();
    },
  };
}

const fileMb = () => ['', '-wal'].reduce((sum, suffix) => sum + (statSync(db + suffix, { throwIfNoEntry: false })?.size ?? 0), 0) / 1e6;

/** Pages in use and free (the freelist, reused by new rows) from a read-only connection. */
function pages(reader: Database.Database) {
  return { pages: reader.pragma('page_count', { simple: true }) as number, free: reader.pragma('freelist_count', { simple: true }) as number };
}

async function backlog(): Promise<void> {
  const count = Number(values.backlog);
  const rate = Number(values.rate);
  const durationS = Number(values.duration);
  const seeded = performance.now();
  if (count > 0) seedBacklog(count);
  emit({ event: 'seeded', backlog: count, seconds: (performance.now() - seeded) / 1000, fileMb: fileMb() });
  const stack = await startServer([]);
  const reader = new Database(db, { readonly: true });
  const expired = reader.prepare('SELECT COUNT(*) FROM tasks WHERE expires_at IS NOT NULL AND expires_at <= ?').pluck();
  try {
    const t0 = performance.now();
    const samples: Array<{ at: number; latency: number }> = [];
    let clearedAt: number | undefined;
    const watch = setInterval(() => {
      if (clearedAt === undefined && (expired.get(Date.now()) as number) === 0) clearedAt = (performance.now() - t0) / 1000;
    }, 1_000);
    const pending: Array<Promise<void>> = [];
    const total = rate * durationS;
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        const start = performance.now();
        pending.push(
          stack.client.run(ECHO, input).then((outcome) => {
            if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new Error(`task ${outcome.taskId} ended ${outcome.state}`);
            samples.push({ at: (start - t0) / 1000, latency: performance.now() - start });
          }),
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(pending);
    clearInterval(watch);
    const p = (list: number[]) => {
      const sorted = [...list].sort((a, b) => a - b);
      return { tasks: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) };
    };
    const during = clearedAt === undefined ? samples : samples.filter((s) => s.at < clearedAt!);
    const rounds = stack.server.lines.filter((l) => l.msg === 'cleaner deleted expired tasks');
    emit({
      event: 'done',
      cleanerRounds: rounds.map((l) => ({ deleted: l.deleted, batches: l.batches, lastBatch: l.batch, longestDeleteMs: l.longestDeleteMs, ms: l.ms })),
      backlog: count,
      rate,
      durationS,
      backlogClearedAfterS: clearedAt ?? null,
      backlogLeft: expired.get(Date.now()),
      all: p(samples.map((s) => s.latency)),
      whileCleaning: count > 0 ? p(during.map((s) => s.latency)) : null,
      fileMb: fileMb(),
      ...pages(reader),
    });
  } finally {
    reader.close();
    await stack.stop();
  }
}

async function steady(): Promise<void> {
  const n = Number(values.n);
  const maxMs = Number(values['max-seconds']) * 1000;
  const inflight = Number(values.inflight);
  const stack = await startServer(['--retain-succeeded', values.retain!]);
  const reader = new Database(db, { readonly: true });
  try {
    const t0 = performance.now();
    let sent = 0;
    let done = 0;
    let window = 0;
    const windows: number[] = [];
    const sample = () => {
      const seconds = (performance.now() - t0) / 1000;
      windows.push(window / 10);
      emit({ event: 'window', seconds: Math.round(seconds), done, tasksPerSecond: window / 10, fileMb: +fileMb().toFixed(1), ...pages(reader), serverRssMb: rssMb(stack.server.pid) });
      window = 0;
    };
    const sampler = setInterval(sample, 10_000);
    await new Promise<void>((resolve, reject) => {
      const launch = () => {
        if (sent - done === 0 && (sent >= n || performance.now() - t0 > maxMs)) return resolve();
        while (sent < n && sent - done < inflight && performance.now() - t0 <= maxMs) {
          sent++;
          stack.client.run(ECHO, input).then((outcome) => {
            if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) return reject(new Error(`task ${outcome.taskId} ended ${outcome.state}`));
            done++;
            window++;
            launch();
          }, reject);
        }
      };
      launch();
    });
    clearInterval(sampler);
    const seconds = (performance.now() - t0) / 1000;
    // The first window includes the start (JIT warm-up); compare the second with the last full one.
    const start = windows[1] ?? windows[0];
    const end = windows.at(-1);
    emit({ event: 'done', tasks: done, seconds, tasksPerSecond: done / seconds, startWindow: start, endWindow: end, endVsStart: start && end ? end / start : null, fileMb: fileMb(), ...pages(reader), serverRssMb: rssMb(stack.server.pid) });
  } finally {
    reader.close();
    await stack.stop();
  }
}

try {
  if (values.scenario === 'backlog') await backlog();
  else if (values.scenario === 'steady') await steady();
  else throw new Error('--scenario is backlog or steady');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
