import pg from 'pg';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { EchoRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient, pack, type TaskwireClient } from '../../src/client/index.js';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { createTaskwireServer, type TaskwireServer } from '../../src/server/index.js';
import { createPostgresStore } from '../../src/store/index.js';
import { createWorker, type Worker } from '../../src/worker/index.js';
import { waitFor } from '../helpers/wait.js';
import { scrape, type Sample } from './scrape.js';

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const STATES = ['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];
/** The machine's PostgreSQL, as in test/store/postgres.test.ts; a schema of this run's own. */
const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `t_gauges_${process.pid}_${Date.now()}`;

const servers: TaskwireServer[] = [];
const clients: TaskwireClient[] = [];
let worker: Worker | undefined;

afterAll(async () => {
  for (const client of clients) client.close();
  await worker?.stop();
  await Promise.all(servers.map((s) => s.shutdown()));
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

/** A replica on the shared schema, with its own /metrics. */
async function replica(): Promise<{ address: string; metrics: number; client: TaskwireClient }> {
  const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
  const server = createTaskwireServer({ store, logger: pino({ level: 'silent' }), metricsListen: '127.0.0.1:0', shutdownGraceMs: 1_000 });
  server.addTaskService(DemoServiceDefinition);
  servers.push(server);
  const address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
  const client = createClient({ server: address });
  clients.push(client);
  return { address, metrics: server.metricsPort!, client };
}

/** The queue gauges of one scrape: tasks by "queue state", and the oldest waiting age per queue. */
function gauges(samples: readonly Sample[]) {
  const tasks: Record<string, number> = {};
  const oldest: Record<string, number> = {};
  for (const s of samples) {
    if (s.name === 'taskwire_tasks' && s.value !== 0) tasks[`${s.labels.queue} ${s.labels.state}`] = s.value;
    if (s.name === 'taskwire_queue_oldest_waiting_seconds') oldest[s.labels.queue!] = s.value;
  }
  return { tasks, oldest };
}

/** What the shared table says, in the same shape. */
async function truth(): Promise<Record<string, number>> {
  const db = new pg.Client({ connectionString: POSTGRES_URL });
  await db.connect();
  try {
    const { rows } = await db.query<{ queue: string; state: number; n: string }>(`SELECT queue, state, COUNT(*) AS n FROM ${schema}.tasks GROUP BY queue, state`);
    return Object.fromEntries(rows.map((r) => [`${r.queue} ${STATES[r.state - 1]}`, Number(r.n)]));
  } finally {
    await db.end();
  }
}

/** Both replicas' gauges, once they agree with each other and with the table (events reach a replica after its NOTIFY). */
async function agreeing(a: number, b: number) {
  return waitFor(
    async () => {
      const [ga, gb, want] = [gauges(await scrape(a)), gauges(await scrape(b)), await truth()];
      const key = (counts: Record<string, number>) => JSON.stringify(Object.entries(counts).sort());
      const same = key(ga.tasks) === key(want) && key(gb.tasks) === key(want);
      return same ? { a: ga, b: gb, want } : undefined;
    },
    { what: 'both replicas’ taskwire_tasks to match the table', timeoutMs: 15_000 },
  );
}

describe('two PostgreSQL replicas export the same queue gauges', () => {
  it('tasks by queue and state, and the oldest waiting age, whichever replica took the writes', async () => {
    const a = await replica();
    const sleep = (queue: string) => ({ type: SLEEP, input: pack(SleepRequest, { durationMs: 60_000 }), options: { queue } });
    // Echo first whatever was queued before it, so the worker's two slots end up on two Sleeps.
    const echo = (queue: string) => ({ type: ECHO, input: pack(EchoRequest, { text: queue }), options: { queue, priority: 10 } });
    // Written before the second replica starts: it learns them from its starting count.
    await a.client.submitMany([...Array.from({ length: 6 }, () => sleep('slow')), ...Array.from({ length: 4 }, () => echo('fast'))]);
    const b = await replica();
    await b.client.submitMany(Array.from({ length: 5 }, () => echo('fast')));

    let seen = await agreeing(a.metrics, b.metrics);
    expect(seen.want).toEqual({ 'slow queued': 6, 'fast queued': 9 });
    for (const queue of ['slow', 'fast']) {
      expect(seen.a.oldest[queue]).toBeGreaterThan(0);
      expect(Math.abs(seen.a.oldest[queue]! - seen.b.oldest[queue]!)).toBeLessThan(2);
    }

    // A worker on replica B runs the Echo tasks and two Sleeps; a cancel goes through replica A.
    worker = createWorker({ server: b.address, logger: pino({ level: 'silent' }), concurrency: 2, shutdownGraceMs: 500 });
    worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
    await worker.start();
    const slow = await a.client.list({ queue: 'slow' });
    await a.client.cancel(slow.tasks[0]!.id, 'gauges test');
    seen = await waitFor(
      async () => {
        const now = await agreeing(a.metrics, b.metrics);
        return now.want['fast succeeded'] === 9 && now.want['slow running'] === 2 ? now : undefined;
      },
      { what: 'the Echo tasks done and two Sleeps running', timeoutMs: 20_000 },
    );
    expect(seen.want).toEqual({ 'slow queued': 3, 'slow running': 2, 'slow cancelled': 1, 'fast succeeded': 9 });
    expect(seen.a.oldest.fast).toBe(0);
    expect(seen.b.oldest.fast).toBe(0);
    expect(Math.abs(seen.a.oldest.slow! - seen.b.oldest.slow!)).toBeLessThan(2);

    // GetQueueStats answers the same on both.
    const [statsA, statsB] = await Promise.all([a.client.stats(), b.client.stats()]);
    const counts = (stats: typeof statsA) => stats.map(({ queue, queued, running, succeeded, cancelled }) => ({ queue, queued, running, succeeded, cancelled }));
    expect(counts(statsA)).toEqual(counts(statsB));
    for (const task of (await a.client.list({ queue: 'slow' })).tasks) if (task.state < 4) await a.client.cancel(task.id, 'done');
  }, 60_000);
});
