import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { acked, audit, connected, expectClean, printTable, setup as setupRun, teardown, type Run } from './harness.js';

/**
 * Faults, with the server, workers and clients as separate processes in
 * network namespaces of their own (harness.ts), each ending with an audit of
 * the store. The faults that cost work rather than data are in costs.test.ts.
 */
let current: Run | undefined;

function setup(): Run {
  current = setupRun();
  return current;
}

afterEach(async ({ task }) => {
  if (current === undefined) return;
  await teardown(current, task.result?.state === 'fail');
  current = undefined;
});

afterAll(() => printTable('fault suite'));

/** Reads the run's database while its server runs. */
function read<T>(run: Run, query: (db: Database.Database) => T): T {
  const db = new Database(run.db, { readonly: true });
  try {
    return query(db);
  } finally {
    db.close();
  }
}

/** Tasks SCHEDULED or QUEUED. */
const waiting = (run: Run) => read(run, (db) => db.prepare('SELECT COUNT(*) FROM tasks WHERE state IN (1, 2)').pluck().get() as number);
const storedIds = (run: Run) => read(run, (db) => new Set(db.prepare('SELECT id FROM tasks').pluck().all() as string[]));

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
    const row = await audit(run, 'server kill -9 ×2 + restart (lease 2 s)', acked(producer), lastFault);
    expectClean(row, 3_000);
    // Restarted within the lease: no attempt is lost to the server's absence.
    expect(row.burned).toBe(0);
  });

  it('kill -9 of the server between a task sent to its worker and the commit of its insert', async () => {
    const run = setup();
    let server = await run.server();
    const pidFile = join(run.dir, 'server.pid');
    writeFileSync(pidFile, String(server.pid));
    // w1 kills the server as it starts a round's first "trip-" task, which it gets before that task's insert commits.
    const tripwire = run.worker('w1', { path: join(import.meta.dirname, 'tripwire.ts'), env: { TASKWIRE_TRIP_PID_FILE: pidFile } });
    const plain = run.worker('w2');
    await connected(server, 'w1', 'w2');
    const before = run.client('unkeyed', 2_000, 'early', 100, 0, 'retry');
    await before.waitForLine((l) => l.done === true, 60_000);
    // Each round: once nothing waits, one submit of 1,000 tasks with 3 KB inputs, whose first tasks go to
    // the workers as its insert begins; the insert's commit takes tens of ms. A round whose kill came
    // only after that commit (a busy machine can be slow to run the worker) is followed by another.
    const trips: Proc[] = [];
    let hit: string | undefined;
    for (let round = 1; round <= 8 && hit === undefined; round++) {
      await waitFor(() => waiting(run) === 0, { what: 'the queue to be empty', timeoutMs: 30_000 });
      const trip = run.client('unkeyed', 1_000, `trip-${round}`, 1_000, 3_072, 'once');
      trips.push(trip);
      const killed = server;
      await waitFor(() => killed.child.exitCode !== null || killed.child.signalCode !== null, { what: 'the tripwire to kill the server', timeoutMs: 30_000 });
      await trip.waitForLine((l) => l.refused !== undefined || l.done === true, 30_000);
      server = await run.server();
      writeFileSync(pidFile, String(server.pid));
      await connected(server, 'w1', 'w2');
      const tripped = (await tripwire.waitForLine((l) => l.round === round)).tripped as string;
      if (!storedIds(run).has(tripped)) {
        hit = tripped;
        expect(acked(trip).size).toBe(0);
      }
    }
    expect(hit, 'in some round the kill came before the commit').toBeDefined();
    const restarted = Date.now();
    const after = run.client('unkeyed', 1_000, 'after', 100, 0, 'retry');
    await after.waitForLine((l) => l.done === true, 60_000);
    const ids = new Map([before, ...trips, after].flatMap((proc) => [...acked(proc)]));
    const row = await audit(run, 'server kill -9 between assignment and durable insert', ids, restarted);
    expectClean(row, 3_000 + trips.reduce((sum, trip) => sum + acked(trip).size, 0));
    expect(row.sameAttemptTwice).toBe(0);
    expect(row.burned).toBe(0);

    // Tasks ran that were never stored (their submit was never acknowledged); the restarted server refused their results.
    const executed = new Set(readFileSync(join(run.dir, 'executions.log'), 'utf8').trim().split('\n').map((line) => line.split(' ')[0]!));
    const stored = storedIds(run);
    const neverStored = [...executed].filter((id) => !stored.has(id));
    expect(neverStored).toContain(hit);
    const refused = new Set([tripwire, plain].flatMap((proc) => proc.lines.filter((l) => l.msg === 'the server refused a result').map((l) => l.task_id)));
    for (const id of neverStored) expect(refused.has(id), `the result of ${id}, never stored, was refused`).toBe(true);
    console.log(`kill between assignment and insert: ${trips.length} rounds; ${neverStored.length} tasks ran that were never stored, every result refused after the restart`);
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
