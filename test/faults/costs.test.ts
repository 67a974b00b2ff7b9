import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { acked, audit, connected, expectClean, printTable, setup, teardown, type Run } from './harness.js';

/**
 * Faults that lose no data but cost work or time (issue 23): server restarts
 * while long tasks run, a long outage, a full disk, one turn of submits far
 * past a message. Each row adds the attempts burned, the time from a restart
 * to every worker back, and to the first task completed.
 */
let current: Run | undefined;
const mounts: string[] = [];
/** Figures beyond the table's columns, printed after it. */
const notes: string[] = [];

afterEach(async ({ task }) => {
  if (current !== undefined) await teardown(current, task.result?.state === 'fail');
  current = undefined;
  for (const dir of mounts.splice(0)) {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

afterAll(() => {
  printTable('fault suite: faults that cost work');
  console.log(notes.join('\n'));
});

/** The fault itself: the server stays down this long. Not a wait for anything to happen. */
const outage = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the scenario's Sleep tasks all run (the restart must hit attempts in progress). */
function sleepsRunning(run: Run, count: number) {
  return waitFor(
    () => {
      const db = new Database(run.db, { readonly: true });
      try {
        const n = db.prepare(`SELECT COUNT(*) FROM tasks WHERE type = '/demo.v1.DemoService/Sleep' AND state = 3`).pluck().get() as number;
        return n === count;
      } finally {
        db.close();
      }
    },
    { what: `${count} Sleep tasks running`, timeoutMs: 30_000, intervalMs: 100 },
  );
}

function both(...procs: Proc[]): Map<string, string> {
  return new Map(procs.flatMap((proc) => [...acked(proc)]));
}

describe('faults that cost work', () => {
  it('kill -9 of the server twice, down 2 s each, lease 5 s, while 20 s tasks run', async () => {
    const run = (current = setup({ leaseMs: 5_000 }));
    let server = await run.server();
    run.worker('w1');
    run.worker('w2');
    await connected(server, 'w1', 'w2');
    const sleeper = run.client('sleeper', 8, 'kill2', 20_000);
    const producer = run.client('producer', 2_000, 'kill2');
    await sleepsRunning(run, 8);
    await waitFor(() => acked(producer).size >= 500, { what: '500 acks', timeoutMs: 60_000 });
    for (let round = 1; round <= 2; round++) {
      await server.kill();
      await outage(2_000);
      server = await run.server();
      await connected(server, 'w1', 'w2');
    }
    const lastFault = Date.now();
    await sleeper.waitForLine((l) => l.done === true, 60_000);
    await producer.waitForLine((l) => l.done === true, 90_000);
    const row = await audit(run, 'server kill -9 ×2, down 2 s, lease 5 s, 20 s tasks', both(sleeper, producer), lastFault);
    expectClean(row, 2_008);
    expect(row.burned).toBe(0);
  });

  it('the server down 30 s, past its 5 s lease, while 45 s tasks run', async () => {
    const run = (current = setup({ leaseMs: 5_000 }));
    let server = await run.server();
    run.worker('w1');
    run.worker('w2');
    await connected(server, 'w1', 'w2');
    const sleeper = run.client('sleeper', 8, 'long', 45_000);
    const producer = run.client('producer', 2_000, 'long');
    await sleepsRunning(run, 8);
    await waitFor(() => acked(producer).size >= 500, { what: '500 acks', timeoutMs: 60_000 });
    await server.kill();
    await outage(30_000);
    server = await run.server();
    await connected(server, 'w1', 'w2');
    const restarted = Date.now();
    await sleeper.waitForLine((l) => l.done === true, 60_000);
    await producer.waitForLine((l) => l.done === true, 90_000);
    const row = await audit(run, 'server down 30 s, lease 5 s, 45 s tasks', both(sleeper, producer), restarted);
    expectClean(row, 2_008);
    // Back within the workers' reconnect cap (5 s) whatever the outage; a second for a loaded machine.
    expect(row.reconnectSeconds).toBeLessThan(6);
    expect(row.burned).toBe(0);
  }, 240_000);

  it('a full disk under the database, then space again', async () => {
    const disk = mkdtempSync(join(tmpdir(), 'taskwire-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', disk]);
    mounts.push(disk);
    const filler = join(disk, 'filler');
    writeFileSync(filler, Buffer.alloc(44 * 1024 * 1024));
    const run = (current = setup({ dbDir: disk }));
    const server = await run.server();
    run.worker('w1');
    run.worker('w2');
    await connected(server, 'w1', 'w2');
    const health = run.client('health', 150_000);
    await health.waitForLine((l) => l.health === 'SERVING', 15_000);
    // Tasks that finish while the disk is full: their results must wait for room, not be run again.
    const sleeper = run.client('sleeper', 8, 'full', 6_000);
    await sleepsRunning(run, 8);
    const producer = run.client('producer', 1_500, 'full', 2_048);

    const full = await server.waitForLine((l) => l.msg === 'the store cannot be written: health NOT_SERVING until a write succeeds', 60_000);
    expect(String(full.reason)).toContain(`the disk is full: the SQLite database ${run.db} cannot be written`);
    await health.waitForLine((l) => l.health === 'NOT_SERVING', 10_000);
    await server.waitForLine((l) => l.msg === 'could not commit worker results: kept, trying again', 20_000);
    await outage(1_000);
    rmSync(filler);
    const freed = Date.now();
    const back = await server.waitForLine((l) => l.msg === 'the store takes writes again: health SERVING' && (l.time as number) >= freed, 30_000);
    const serving = await health.waitForLine((l) => l.health === 'SERVING' && (l.at as number) >= freed, 10_000);
    await producer.waitForLine((l) => l.done === true, 120_000);
    await sleeper.waitForLine((l) => l.done === true, 30_000);

    const row = await audit(run, 'disk full (tmpfs), then freed', both(sleeper, producer), freed);
    expectClean(row, 1_508);
    expect(row.burned).toBe(0);
    expect(row.executedMoreThanOnce).toBe(0);
    // Submits refused while full, each on its own and saying why; none as an internal error.
    const refusals = producer.lines.flatMap((l) => (typeof l.refused === 'string' ? [l.refused] : []));
    expect(refusals.length).toBeGreaterThan(0);
    for (const refusal of refusals) expect(refusal).toMatch(/RESOURCE_EXHAUSTED: the disk is full/);
    const kept = server.lines.filter((l) => l.msg === 'could not commit worker results: kept, trying again').length;
    notes.push(
      `disk full: ${refusals.length} submit batches refused RESOURCE_EXHAUSTED; writes back ${(back.time as number) - freed} ms and health SERVING ${(serving.at as number) - freed} ms after space was freed; ${kept} times worker results were kept to commit later`,
    );
  }, 240_000);

  it('one turn of submits far past one message: 1,100 × 16 KB, 3,000 × 6 KB, 200,000 small', async () => {
    const run = (current = setup({ concurrency: 64 }));
    const server = await run.server();
    run.worker('w1');
    run.worker('w2');
    await connected(server, 'w1', 'w2');
    const started = Date.now();
    const burst = run.client('burst', 'burst');
    const end = await burst.waitForLine((l) => l.done === true || l.refused !== undefined, 180_000);
    expect(end.refused).toBeUndefined();
    const row = await audit(run, 'oversized turns of submitMany', acked(burst), started, 180_000);
    expectClean(row, 204_100);
    notes.push(
      `oversized turns: ${burst.lines
        .filter((l) => l.group !== undefined)
        .map((l) => `${l.count} × ${String(l.group)} acknowledged in ${String(l.ms)} ms`)
        .join(', ')}`,
    );
  }, 300_000);
});

