import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type TaskwireClient } from '../../src/client/index.js';
import { killAll, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

let procs: Proc[] = [];
let clients: TaskwireClient[] = [];
let schema: string;
let dir: string;

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await killAll(procs);
  procs = [];
  const db = new pg.Client({ connectionString: POSTGRES_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('ListWorkers across PostgreSQL replicas (server processes)', () => {
  it('lists a worker of another replica with that replica, and drops it within the expiry after kill -9', async () => {
    schema = `e2e_workers_${process.pid}_${Date.now()}`;
    dir = mkdtempSync(join(tmpdir(), 'taskwire-replica-workers-'));
    const args = ['--store', POSTGRES_URL, '--pg-schema', schema];
    const [a, b] = await Promise.all([0, 1].map(() => startServerProcess(join(dir, 'unused.db'), '127.0.0.1:0', args)));
    procs.push(a!.proc, b!.proc);
    const worker = startWorkerProcess(b!.address, 'on-b');
    procs.push(worker);
    await worker.waitForLine((l) => l.msg === 'connected');

    const clientA = createClient({ server: a!.address });
    const clientB = createClient({ server: b!.address });
    clients.push(clientA, clientB);
    const [seenFromA] = await waitFor(async () => {
      const workers = await clientA.workers();
      return workers.length === 1 && workers;
    }, { what: 'replica A to list the worker connected to B' });
    const [seenFromB] = await clientB.workers();
    expect(seenFromA).toMatchObject({ workerId: 'on-b', slots: seenFromB!.slots, sessionId: seenFromB!.sessionId, replica: seenFromB!.replica });

    // B dies without a word: its row stays until it expires (15 s), then A no longer lists it.
    const killedAt = Date.now();
    await b!.proc.kill();
    await waitFor(async () => (await clientA.workers()).length === 0, { timeoutMs: 30_000, intervalMs: 500, what: 'the dead replica’s worker to expire' });
    const gone = Date.now() - killedAt;
    expect(gone).toBeLessThan(25_000);
    console.log(`worker of a killed replica listed for ${gone} ms after kill -9`);
  }, 60_000);
});
