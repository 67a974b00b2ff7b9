import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskMethodOptions } from '../../gen/ts/taskwire/v1/options.js';
import { TaskState, type Task } from '../../gen/ts/taskwire/v1/task.js';
import { TaskView } from '../../gen/ts/taskwire/v1/task_service.js';
import { createClient, pack, type TaskwireClient } from '../../src/client/index.js';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { createTaskwireServer, type TaskServiceOptions } from '../../src/server/index.js';
import { createPostgresStore, type Store } from '../../src/store/index.js';
import { createWorker, type Worker } from '../../src/worker/index.js';
import { waitFor } from '../helpers/wait.js';
import { dropSchema, openTestStore, POSTGRES_URL } from '../helpers/stores.js';

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const quiet = () => pino({ level: 'silent' });

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function openStore(kind: 'sqlite' | 'postgres'): Promise<Store> {
  return openTestStore(kind, 'rates', (cleanup) => cleanups.push(cleanup));
}

/** The demo service with `(taskwire.v1.task) = { … }` on Echo. */
function demoWithOption(option: Partial<TaskMethodOptions>) {
  const bytes = new BinaryWriter().bytes(TaskMethodOptions.encode(TaskMethodOptions.fromPartial(option)).finish()).finish();
  const echo = { ...DemoServiceDefinition.methods.echo, options: { _unknownFields: { [(51234 << 3) | 2]: [bytes] } } };
  return { ...DemoServiceDefinition, methods: { ...DemoServiceDefinition.methods, echo } };
}

async function start(kind: 'sqlite' | 'postgres', definition: typeof DemoServiceDefinition, options: TaskServiceOptions | undefined, workers: number) {
  const server = createTaskwireServer({ store: await openStore(kind), logger: quiet(), leaseMs: 10_000 });
  server.addTaskService(definition, options);
  const port = await server.listen('127.0.0.1:0');
  const address = `127.0.0.1:${port}`;
  const running: Worker[] = [];
  const client = createClient({ server: address });
  cleanups.push(async () => {
    client.close();
    await Promise.all(running.map((w) => w.stop()));
    await server.shutdown();
  });
  for (let i = 0; i < workers; i++) {
    const worker = createWorker({ server: address, logger: quiet(), concurrency: 16, workerId: `w${i}` });
    worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
    running.push(worker);
    await worker.start();
  }
  return client;
}

/** The stored tasks of a queue once `count` of them have succeeded (one stats call a poll, one list at the end). */
async function finished(client: TaskwireClient, queue: string, count: number, timeoutMs: number): Promise<Task[]> {
  await waitFor(async () => ((await client.stats(queue))[0]?.succeeded ?? 0) >= count, { timeoutMs, intervalMs: 100, what: `${count} tasks of ${queue} to succeed` });
  const tasks: Task[] = [];
  let pageToken = '';
  do {
    const page = await client.list({ queue, pageSize: 1000, pageToken, view: TaskView.TASK_VIEW_FULL });
    tasks.push(...page.tasks);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  expect(tasks.length).toBe(count);
  expect(tasks.every((t) => t.state === TaskState.TASK_STATE_SUCCEEDED)).toBe(true);
  return tasks;
}

const echo = (i: number) => ({ type: ECHO, input: pack(EchoRequest, { text: `rated ${i}`, payload: Buffer.alloc(0) }) });
const startsOf = (tasks: readonly Task[]) => tasks.map((t) => t.startTime!.getTime()).sort((a, b) => a - b);

/** The most starts in any window of `ms` (each window opening at a start). */
function mostIn(starts: readonly number[], ms: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < starts.length; i++) {
    while (j < starts.length && starts[j]! < starts[i]! + ms) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

const RATE = 20;
const BURST = 5;

describe.each(['sqlite', 'postgres'] as const)('a task type limited to %s', (kind) => {
  it(`starts at most ${RATE}/s (burst ${BURST}) over 10 s across 4 workers; another type is not held up`, async () => {
    const client = await start(kind, DemoServiceDefinition, { methods: { echo: { rateLimit: { perSecond: RATE, burst: BURST } } } }, 4);
    const count = RATE * 10 + BURST;
    const rated = await client.submitMany(Array.from({ length: count }, (_, i) => echo(i)));
    expect(rated).toHaveLength(count);
    await client.submitMany(Array.from({ length: 200 }, () => ({ type: SLEEP, input: pack(SleepRequest, { durationMs: 1, steps: 0 }), options: { queue: 'other' } })));
    const otherTasks = await finished(client, 'other', 200, 30_000);
    const tasks = await finished(client, 'default', count, 40_000);
    const starts = startsOf(tasks);
    const span = starts.at(-1)! - starts[0]!;
    // The first burst goes at once; after it, one task every 1/RATE s.
    expect(starts[BURST - 1]! - starts[0]!).toBeLessThan(500);
    expect(mostIn(starts, 1_000)).toBeLessThanOrEqual(RATE + BURST + 1);
    const rate = ((count - BURST) / span) * 1000;
    expect(rate).toBeLessThanOrEqual(RATE * 1.05);
    expect(rate).toBeGreaterThan(RATE * 0.8); // a loaded machine may start them later, never sooner
    expect(new Set(tasks.map((t) => t.workerId)).size).toBeGreaterThan(1);
    // The unlimited type flowed past the limited backlog.
    const lastOther = Math.max(...otherTasks.map((t) => t.finishTime!.getTime()));
    expect(lastOther).toBeLessThan(starts[0]! + span / 2);
    console.log(`${kind}: ${count} limited tasks started over ${span} ms (${rate.toFixed(2)}/s after the burst; most in 1 s: ${mostIn(starts, 1_000)}); 200 others done ${lastOther - starts[0]!} ms after the first`);
  }, 90_000);
});

describe('where a rate limit comes from', () => {
  it('reads rate_per_second and rate_burst from the (taskwire.v1.task) option', async () => {
    const client = await start('sqlite', demoWithOption({ ratePerSecond: 4, rateBurst: 2 }), undefined, 2);
    await client.submitMany(Array.from({ length: 6 }, (_, i) => echo(i)));
    const starts = startsOf(await finished(client, 'default', 6, 10_000));
    expect(starts[1]! - starts[0]!).toBeLessThan(200); // the burst of 2
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(950); // then 4 more at 4/s
  });

  it('lets addTaskService defaults override the option', async () => {
    const client = await start('sqlite', demoWithOption({ ratePerSecond: 1 }), { defaults: { rateLimit: { perSecond: 5, burst: 1 } } }, 1);
    await client.submitMany(Array.from({ length: 4 }, (_, i) => echo(i)));
    const starts = startsOf(await finished(client, 'default', 4, 10_000));
    const span = starts.at(-1)! - starts[0]!;
    expect(span).toBeGreaterThanOrEqual(550); // three tokens at 5/s, not at 1/s (3 s)
    expect(span).toBeLessThan(2_000);
  });

  it.each([
    [{ ratePerSecond: -1 }, /rate_per_second must be a number above 0/],
    [{ ratePerSecond: Number.NaN }, /rate_per_second must be a number above 0/],
    [{ ratePerSecond: 2e6 }, /rate_per_second .* at most 1000000/],
    [{ rateBurst: 3 }, /rate_burst needs rate_per_second/],
  ])('refuses the option %o when the service is added', async (option, message) => {
    const server = createTaskwireServer({ store: await openStore('sqlite'), logger: quiet() });
    cleanups.push(() => server.shutdown());
    expect(() => server.addTaskService(demoWithOption(option))).toThrow(message);
  });

  it.each([
    [{ perSecond: 0 }, /\/demo.v1.DemoService\/Echo: rate_per_second must be a number above 0/],
    [{ perSecond: 1, burst: 0.5 }, /rate_burst must be an integer in 1\.\.1000000; got 0.5/],
    [{ perSecond: Infinity }, /rate_per_second/],
  ])('refuses the code default %o', async (rateLimit, message) => {
    const server = createTaskwireServer({ store: await openStore('sqlite'), logger: quiet() });
    cleanups.push(() => server.shutdown());
    expect(() => server.addTaskService(DemoServiceDefinition, { methods: { echo: { rateLimit } } })).toThrow(message);
  });
});

describe('two PostgreSQL replicas', () => {
  it('split a type\'s rate: together they start at most the limit', async () => {
    const schema = `rates2_${process.pid}_${Date.now()}`;
    cleanups.push(() => dropSchema(schema));
    const clients: TaskwireClient[] = [];
    for (const replica of ['r1', 'r2']) {
      const server = createTaskwireServer({ store: await createPostgresStore({ connectionString: POSTGRES_URL, schema }), logger: quiet(), replica });
      server.addTaskService(DemoServiceDefinition, { methods: { echo: { rateLimit: { perSecond: 10, burst: 2 } } } });
      const address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
      const client = createClient({ server: address });
      const workers = [0, 1].map((i) => {
        const worker = createWorker({ server: address, logger: quiet(), concurrency: 8, workerId: `${replica}-w${i}` });
        worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
        return worker;
      });
      cleanups.push(async () => {
        client.close();
        await Promise.all(workers.map((w) => w.stop()));
        await server.shutdown();
      });
      await Promise.all(workers.map((w) => w.start()));
      clients.push(client);
    }
    await waitFor(async () => (await clients[0]!.workers()).length === 4 && (await clients[1]!.workers()).length === 4, { what: 'both replicas to list all four workers' });
    const count = 150;
    await clients[0]!.submitMany(Array.from({ length: count }, (_, i) => echo(i)));
    const tasks = await finished(clients[0]!, 'default', count, 60_000);
    const starts = startsOf(tasks);
    // Each replica recounts the replicas serving the type every 5 s: from then on the two share 10/s.
    const settled = starts.filter((s) => s >= starts[0]! + 6_000);
    const rate = ((settled.length - 1) / (settled.at(-1)! - settled[0]!)) * 1000;
    expect(new Set(tasks.map((t) => t.workerId.split('-')[0])).size).toBe(2);
    expect(rate).toBeLessThanOrEqual(10.5);
    expect(rate).toBeGreaterThan(7);
    console.log(`two replicas: ${count} tasks over ${starts.at(-1)! - starts[0]!} ms; ${rate.toFixed(2)}/s once split`);
  }, 90_000);
});
