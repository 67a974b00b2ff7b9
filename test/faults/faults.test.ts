import { afterAll, afterEach, describe, expect, it } from 'vitest';
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
