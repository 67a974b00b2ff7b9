import pg from 'pg';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskMethodOptions } from '../../gen/ts/taskwire/v1/options.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { ClientError, Status } from 'nice-grpc';
import { Code } from '../../src/errors.js';
import { defaultsFromOption } from '../../src/server/index.js';
import { createPostgresStore, type Store } from '../../src/store/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';
const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Finished tasks past their retention vanish through the real server, on both stores. */

type Stack = Awaited<ReturnType<typeof startStack>>;
let stacks: Stack[] = [];
afterEach(async () => {
  await Promise.all(stacks.map((s) => s.stop()));
  stacks = [];
});

const prefix = `ret_${process.pid}_${Date.now()}`;
const schemas: string[] = [];
afterAll(async () => {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

function postgresSchema(): string {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  return schema;
}

const S = TaskState;
const stores: Record<string, (schema: string) => Promise<Store | undefined>> = {
  sqlite: async () => undefined,
  postgres: (schema) => createPostgresStore({ connectionString: POSTGRES_URL, schema }),
};

async function missing(stack: Stack, id: string): Promise<boolean> {
  const error = await stack.client().get(id).then(() => undefined, (e: unknown) => e);
  if (error === undefined) return false;
  expect(error).toBeInstanceOf(ClientError);
  expect((error as ClientError).code).toBe(Status.NOT_FOUND);
  return true;
}

/** The broker's maintained counts of one queue, as GetQueueStats answers them. */
async function counts(stack: Stack, queue = 'default') {
  const [row] = await stack.client().stats(queue);
  return row;
}

describe.each(Object.keys(stores))('retention on %s', (kind) => {
  async function stack(
    retention: { succeededMs?: number; failedMs?: number; cancelledMs?: number },
    schema = postgresSchema(),
    serviceOptions?: Parameters<typeof startStack>[1],
    extra: Parameters<typeof startStack>[0] = {},
  ) {
    const store = await stores[kind]!(schema);
    const s = await startStack({ retention, ...(store === undefined ? {} : { store }), ...extra }, serviceOptions);
    stacks.push(s);
    return s;
  }

  it('deletes succeeded and cancelled tasks after their retention, keeps what 0 keeps, and frees idempotency keys', async () => {
    const registry = new Registry();
    const logs: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const s = await stack({ succeededMs: 300, cancelledMs: 300, failedMs: 0 }, postgresSchema(), undefined, { metricsRegistry: registry, logger });
    await s.worker();
    const demo = s.client().service(DemoServiceDefinition);
    const done = await demo.echo.submit({ text: 'a' }, { idempotencyKey: 'once' });
    await done.result();
    const dead = await demo.fail.submit({ permanent: true, code: Code.INVALID_ARGUMENT, message: 'no' });
    await dead.result().catch(() => undefined);
    const cancelled = await demo.sleep.submit({ durationMs: 60_000 }, { delayMs: 60_000 });
    await s.client().cancel(cancelled.id);
    // Before the retention ends the key still names the task.
    expect((await demo.echo.submit({ text: 'b' }, { idempotencyKey: 'once' })).id).toBe(done.id);

    const cleaner = s.server.broker.cleaner!;
    await waitFor(async () => {
      await cleaner.caughtUp();
      return (await missing(s, done.id)) && (await missing(s, cancelled.id));
    }, { what: 'the succeeded and cancelled tasks to be deleted' });
    expect(await s.client().get(dead.id)).toMatchObject({ state: S.TASK_STATE_FAILED });
    expect(cleaner.deleted).toBe(2);
    const cleaned = (await registry.getMetricsAsJSON()).find((m) => m.name === 'taskwire_tasks_cleaned_total')!;
    const byState = Object.fromEntries(cleaned.values.map((v) => [v.labels.state, v.value]));
    expect(byState).toEqual({ succeeded: 1, failed: 0, cancelled: 1 });
    // One debug line per round that deleted something, none for the rounds that found nothing.
    const rounds = logs.filter((l) => l.msg === 'cleaner deleted expired tasks');
    expect(rounds.reduce((sum, l) => sum + Number(l.deleted), 0)).toBe(2);
    expect(rounds.length).toBeLessThanOrEqual(2);
    expect(cleaner.rounds).toBeGreaterThan(rounds.length);

    // The counts GetQueueStats serves follow the deletions, and agree with the store's own count.
    const row = await counts(s);
    expect(row?.succeeded ?? 0).toBe(0);
    expect(row?.cancelled ?? 0).toBe(0);
    expect(row?.failed).toBe(1);
    expect(await maintained(s)).toEqual(await listed(s));

    // The key went with its task: the same key now makes a new task.
    const again = await demo.echo.submit({ text: 'c' }, { idempotencyKey: 'once' });
    expect(again.existing).toBe(false);
    expect(again.id).not.toBe(done.id);
  });

  it('a type’s own retention beats the server’s', async () => {
    const s = await stack({ succeededMs: 0 }, postgresSchema(), { methods: { echo: { retention: { succeededMs: 200 } } } });
    await s.worker();
    const demo = s.client().service(DemoServiceDefinition);
    const echo = await demo.echo.submit({ text: 'goes' });
    const sleep = await demo.sleep.submit({ durationMs: 1 });
    await Promise.all([echo.result(), sleep.result()]);
    await waitFor(async () => {
      await s.server.broker.cleaner!.caughtUp();
      return missing(s, echo.id);
    }, { what: 'the Echo task to be deleted' });
    expect(await s.client().get(sleep.id)).toMatchObject({ state: S.TASK_STATE_SUCCEEDED });
    expect((await counts(s))?.succeeded).toBe(1);
  });
});

/** The broker's maintained counts of the default queue, zeros left out. */
async function maintained(s: Stack) {
  const row = await counts(s);
  const all = { scheduled: row?.scheduled, queued: row?.queued, running: row?.running, succeeded: row?.succeeded, failed: row?.failed, cancelled: row?.cancelled };
  return Object.fromEntries(Object.entries(all).filter(([, n]) => n !== undefined && n > 0));
}

/** The same counted from the tasks that are there (ListTasks reads the store). */
async function listed(s: Stack) {
  const { tasks } = await s.client().list({ queue: 'default', pageSize: 1000 });
  const byState: Record<string, number> = {};
  for (const task of tasks) {
    const name = TaskState[task.state].replace('TASK_STATE_', '').toLowerCase();
    byState[name] = (byState[name] ?? 0) + 1;
  }
  return byState;
}

describe('retention on two PostgreSQL replicas', () => {
  it('both clean at once; each task is deleted once, nothing else is, and both keep the right counts', async () => {
    const schema = postgresSchema();
    // Long enough that a backlog builds while the tasks run: both cleaners then race over it.
    const retention = { succeededMs: 1_000, failedMs: 0, cancelledMs: 0 };
    const a = await startStack({ retention, store: await createPostgresStore({ connectionString: POSTGRES_URL, schema }) });
    const b = await startStack({ retention, store: await createPostgresStore({ connectionString: POSTGRES_URL, schema }) });
    stacks.push(a, b);
    await a.worker();
    const demo = a.client().service(DemoServiceDefinition);
    const tasks = await Promise.all(Array.from({ length: 300 }, (_, i) => demo.echo.submit({ text: `t${i}` })));
    await Promise.all(tasks.map((t) => t.result()));
    const kept = await demo.fail.submit({ permanent: true, code: Code.INVALID_ARGUMENT, message: 'kept' });
    await kept.result().catch(() => undefined);

    await waitFor(async () => {
      await Promise.all([a.server.broker.cleaner!.caughtUp(), b.server.broker.cleaner!.caughtUp()]);
      return (await a.client().list({ queue: 'default', pageSize: 1000 })).tasks.length === 1;
    }, { what: 'every succeeded task to be deleted' });
    expect(a.server.broker.cleaner!.deleted + b.server.broker.cleaner!.deleted).toBe(300);
    expect(await a.client().get(kept.id)).toMatchObject({ state: S.TASK_STATE_FAILED });
    // Each replica counts the other's deletions too (they arrive by NOTIFY).
    for (const s of [a, b]) {
      await waitFor(async () => ((await counts(s))?.succeeded ?? 0) === 0, { what: 'the succeeded count to reach 0' });
      expect(await maintained(s)).toEqual(await listed(s));
    }
  });
});

describe('the (taskwire.v1.task) option’s retain_* fields', () => {
  it('set a type’s retention; zero keeps forever; unset takes the server’s', () => {
    const option = TaskMethodOptions.fromPartial({ retainSucceeded: { seconds: 90, nanos: 0 }, retainFailed: { seconds: 0, nanos: 0 } });
    expect(defaultsFromOption(option).retention).toEqual({ succeededMs: 90_000, failedMs: 0 });
    expect(defaultsFromOption(TaskMethodOptions.fromPartial({ queue: 'q' })).retention).toBeUndefined();
  });
});
