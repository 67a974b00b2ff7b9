import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { createClient, pack, unpack, type TaskwireClient } from '../../src/client/index.js';
import { killAll, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';

let procs: Proc[] = [];
let clients: TaskwireClient[] = [];
let schema: string;
let dir: string;

async function sql<T extends pg.QueryResultRow>(text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await killAll(procs);
  procs = [];
  await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  rmSync(dir, { recursive: true, force: true });
});

/** `count` server replicas on one PostgreSQL schema of this test's own. */
async function replicas(count: number) {
  schema = `e2e_${process.pid}_${Date.now()}`;
  dir = mkdtempSync(join(tmpdir(), 'taskwire-replicas-'));
  const servers: Array<ReturnType<typeof startServerProcess>> = [];
  for (let i = 0; i < count; i++) {
    // Started one after the other would hide a race in migrations: start them together.
    // A 5 s lease: the attempts the killed replica's workers held come back in seconds, not 30.
    servers.push(startServerProcess(join(dir, 'unused.db'), '127.0.0.1:0', ['--store', POSTGRES_URL, '--pg-schema', schema, '--lease-ms', '5000']));
  }
  // Every replica that did start is cleaned up, even when another failed to.
  const settled = await Promise.allSettled(servers);
  for (const result of settled) if (result.status === 'fulfilled') procs.push(result.value.proc);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  return settled.map((result) => (result as PromiseFulfilledResult<Awaited<ReturnType<typeof startServerProcess>>>).value);
}

function client(address: string) {
  const c = createClient({ server: address });
  clients.push(c);
  return c;
}

describe('several server replicas on PostgreSQL', () => {
  it('runs a task submitted on one replica by a worker on another, and watchers anywhere see it', async () => {
    const [a, b] = await replicas(2);
    procs.push(startWorkerProcess(b!.address, 'worker-on-b'));
    const onA = client(a!.address);
    await waitFor(async () => (await client(b!.address).workers()).length === 1, { what: 'the worker on B' });

    const { id } = await onA.submit(SLEEP, pack(SleepRequest, { durationMs: 600, steps: 3 }));
    const states: number[] = [];
    const progress: number[] = [];
    for await (const event of onA.watch(id)) {
      if (event?.$case === 'task') states.push(event.value.state);
      if (event?.$case === 'progress') progress.push(Math.round(event.value.percent));
    }
    expect(states).toContain(TaskState.TASK_STATE_RUNNING);
    expect(states.at(-1)).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(progress.length).toBeGreaterThan(0);

    const outcome = await onA.run(ECHO, pack(EchoRequest, { text: 'across replicas' }));
    expect(unpack(EchoResponse, outcome.output)).toMatchObject({ text: 'across replicas', workerId: 'worker-on-b' });
  });

  it('loses nothing and applies nothing twice when one of 3 replicas is killed with SIGKILL mid-run', async () => {
    const servers = await replicas(3);
    const all = servers.map((s) => s.address).join(',');
    // One worker lives and dies with the victim's address (as if in its pod); three can reach every replica.
    procs.push(startWorkerProcess(servers[2]!.address, 'pinned', ['--concurrency', '16']));
    for (let i = 0; i < 3; i++) procs.push(startWorkerProcess(all, `w${i}`, ['--concurrency', '16']));
    const producer = client(servers[0]!.address);
    // Every replica lists every replica's workers.
    await waitFor(async () => {
      const lists = await Promise.all(servers.map((s) => client(s.address).workers()));
      return lists.every((workers) => workers.length === 4);
    }, { what: '4 workers across the replicas, listed by each', timeoutMs: 40_000, intervalMs: 1_000 });

    const acked = new Map<string, string>();
    const submitting = (async () => {
      for (let batch = 0; batch < 40; batch++) {
        const items = Array.from({ length: 500 }, (_, i) => ({ type: ECHO, input: pack(EchoRequest, { text: `b${batch}-${i}` }) }));
        const submitted = await producer.submitMany(items);
        submitted.forEach((s, i) => acked.set(s.id, `b${batch}-${i}`));
      }
    })();
    await waitFor(() => acked.size >= 5_000, { what: '5,000 acknowledged submits', timeoutMs: 30_000 });
    // The victim holds workers (and their running leases) when it dies.
    const everyone = await client(servers[2]!.address).workers();
    const victim = everyone.find((w) => w.workerId === 'pinned')!.replica;
    expect(everyone.filter((w) => w.replica === victim).length).toBeGreaterThan(0);
    await servers[2]!.proc.kill();
    await submitting;
    expect(acked.size).toBe(20_000);

    await waitFor(
      async () => {
        const left = await sql<{ state: number; attempt: number; n: string }>(
          `SELECT state, attempt, COUNT(*) AS n FROM ${schema}.tasks WHERE state <> ${TaskState.TASK_STATE_SUCCEEDED} GROUP BY state, attempt`,
        );
        // Thrown, so that a timeout says which tasks were left and where.
        if (left.length > 0) throw new Error(`not yet SUCCEEDED (state, attempt, count): ${JSON.stringify(left.map((r) => [r.state, r.attempt, Number(r.n)]))}`);
        return true;
      },
      { what: 'every task SUCCEEDED', timeoutMs: 60_000, intervalMs: 250 },
    );
    const rows = await sql<{ id: string; state: number; output: Buffer }>(`SELECT id, state, output FROM ${schema}.tasks`);
    expect(rows).toHaveLength(20_000);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [id, text] of acked) {
      const row = byId.get(id);
      expect(row?.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
      expect(EchoResponse.decode(row!.output).text).toBe(text);
    }
  }, 120_000);
});
