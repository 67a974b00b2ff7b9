import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient, pack, type TaskwireClient } from '../../src/client/index.js';
import { killAll, startCli, startServerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const ECHO = '/demo.v1.DemoService/Echo';

let procs: Proc[] = [];
let clients: TaskwireClient[] = [];
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await killAll(procs);
  procs = [];
  for (const cleanup of cleanups) await cleanup();
  cleanups = [];
});

function client(address: string) {
  const c = createClient({ server: address });
  clients.push(c);
  return c;
}

/** A store for child-process servers: a SQLite file, or a PostgreSQL schema of this test's own. */
function storeArgs(kind: 'sqlite' | 'postgres'): { db: string; extra: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-schedules-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  if (kind === 'sqlite') return { db: join(dir, 'tasks.db'), extra: [] };
  const schema = `sched_${process.pid}_${Date.now()}`;
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: POSTGRES_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });
  return { db: join(dir, 'unused.db'), extra: ['--store', POSTGRES_URL, '--pg-schema', schema] };
}

async function server(store: { db: string; extra: string[] }) {
  const started = await startServerProcess(store.db, '127.0.0.1:0', store.extra);
  procs.push(started.proc);
  return started;
}

/** Every task a schedule fired, by the due time in its idempotency key (the same key twice would be one row). */
async function dueTimes(c: TaskwireClient, id: string): Promise<number[]> {
  const dues: number[] = [];
  let pageToken = '';
  do {
    const page = await c.list({ pageSize: 1000, pageToken, type: ECHO });
    for (const task of page.tasks) {
      const match = /^taskwire-schedule\/(.+)\/(\d+)$/.exec(task.options?.idempotencyKey ?? '');
      if (match?.[1] === id) dues.push(Number(match[2]));
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return dues.sort((a, b) => a - b);
}

/** One task per due second from the first to the last: none twice (fired counts every insert), none missing. */
async function expectOncePerSecond(c: TaskwireClient, id: string) {
  const schedule = await c.schedules.get(id);
  const dues = await dueTimes(c, id);
  expect(schedule.state!.fired).toBe(dues.length);
  expect(dues.length).toBe((dues.at(-1)! - dues[0]!) / 1000 + 1);
  expect(schedule.state!.missedSkipped).toBe(0);
  return dues;
}

const everySecond = { type: ECHO, input: pack(EchoRequest, { text: 'tick', payload: Buffer.alloc(0) }), cron: '* * * * * *', missed: 'all', missedLimit: 1000, overlap: 'allow' } as const;

describe.each(['sqlite', 'postgres'] as const)('a schedule every second (%s, server processes)', (kind) => {
  it('fires once per due time over a kill -9 and a restart', async () => {
    const store = storeArgs(kind);
    const first = await server(store);
    await client(first.address).schedules.create('tick', everySecond);
    await waitFor(async () => (await client(first.address).schedules.get('tick')).state!.fired >= 3, { timeoutMs: 15_000, what: 'three firings' });
    await first.proc.kill();
    const killedAt = Date.now();
    // The outage itself: due times pass while no server runs.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const second = await server(store);
    const c = client(second.address);
    const target = Date.now() + 2_000;
    await waitFor(async () => (await c.schedules.get('tick')).state!.lastFireTime!.getTime() >= target, { timeoutMs: 20_000, what: 'firings after the restart' });
    const dues = await expectOncePerSecond(c, 'tick');
    expect(dues.filter((due) => due > killedAt).length).toBeGreaterThanOrEqual(2);

    // The CLI lists it with its next and last firing.
    const list = startCli(['--server', second.address, 'schedule', 'list']);
    procs.push(list);
    const line = await list.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('tick'));
    expect(line.msg).toMatch(/^tick {2}\/demo\.v1\.DemoService\/Echo {2}cron "\* \* \* \* \* \*" UTC {2}next \S+Z {2}last \S+Z \(\S+\) {2}fired \d+/);
    expect(await list.exited).toBe(0);
  }, 60_000);
});

describe('a schedule on two PostgreSQL replicas', () => {
  it('fires each due time once, whichever replica gets there first', async () => {
    const store = storeArgs('postgres');
    const [a, b] = await Promise.all([server(store), server(store)]);
    await client(a.address).schedules.create('tick', everySecond);
    const c = client(b.address);
    await waitFor(async () => (await c.schedules.get('tick')).state!.fired >= 6, { timeoutMs: 20_000, what: 'six firings' });
    await expectOncePerSecond(c, 'tick');
    // B learnt of the schedule from A (NOTIFY) and fires it too: kill A, B goes on alone.
    await a.proc.kill();
    const fired = (await c.schedules.get('tick')).state!.fired;
    await waitFor(async () => (await c.schedules.get('tick')).state!.fired >= fired + 2, { timeoutMs: 10_000, what: 'firings by the replica left' });
    await expectOncePerSecond(c, 'tick');
  }, 60_000);
});
