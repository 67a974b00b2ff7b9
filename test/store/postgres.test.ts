import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { createPostgresStore, type TaskEvent } from '../../src/store/index.js';
import { deferred, waitFor } from '../helpers/wait.js';
import { describeStoreConformance, ECHO, newTask } from './conformance.js';
import { describeFilterConformance } from './filters.js';
import { describeScheduleConformance } from './schedule-conformance.js';
import { describeKeyConformance } from './key-conformance.js';
import { describeQueueControlConformance } from './conformance-controls.js';
import { READY } from '../../src/store/decisions.js';
import { SQL } from '../../src/store/postgres/statements.js';

/** The machine's PostgreSQL (`.ci/services.sh` starts it); each run uses schemas of its own. */
export const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `t_${process.pid}_${Date.now()}`;
const schemas: string[] = [];

afterAll(async () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describeStoreConformance('postgres', async () => {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  return createPostgresStore({ connectionString: POSTGRES_URL, schema });
});

describeFilterConformance('postgres', async () => {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
  return {
    store,
    async remove(ids) {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DELETE FROM ${schema}.tasks WHERE id = ANY($1)`, [ids]);
      } finally {
        await client.end();
      }
    },
  };
});

describeScheduleConformance('postgres', async () => {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  return createPostgresStore({ connectionString: POSTGRES_URL, schema });
});

describeQueueControlConformance('postgres', async () => {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
  return {
    store,
    // The rows tasks_ready's WHERE admits (the index holds exactly those; the claim's plan is checked below).
    async readyRows() {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${schema}.tasks WHERE ${READY}`);
        return Number(rows[0]!.n);
      } finally {
        await client.end();
      }
    },
  };
});

describeKeyConformance('postgres', async () => {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  return createPostgresStore({ connectionString: POSTGRES_URL, schema });
});

describe('postgres claim plan', () => {
  it('reads tasks_ready, which holds none of a paused backlog: a claim steps over none of it', async () => {
    const schema = `${prefix}_claim_plan`;
    schemas.push(schema);
    const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
    await store.insert(Array.from({ length: 1200 }, () => newTask({ options: { queue: 'held' } })));
    await store.pauseQueue('held', Date.now());
    const free = newTask({ options: { queue: 'free' } });
    await store.insert([free]);

    const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('ANALYZE tasks');
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${SQL.claim}`,
        ['o', 'w', Date.now() + 10_000, Date.now(), [ECHO], 1],
      );
      await client.query('ROLLBACK');
      const ready = nodes(rows[0]!['QUERY PLAN'][0].Plan).filter((node) => node['Index Name'] === 'tasks_ready');
      expect(ready).not.toEqual([]);
      // What the scan read from the index: the rows it returned and those its filter dropped.
      const visited = ready.reduce((n, node) => n + (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops'], 0);
      expect(visited).toBe(1);
    } finally {
      await client.end();
    }
    const claimed = await store.claim({ types: [ECHO], limit: 5, owner: 'o', workerId: 'w', leaseMs: 10_000, now: Date.now() });
    expect(claimed.map((lease) => lease.id)).toEqual([free.id]);
    await store.close();
  });
});

describe('postgres pause flags', () => {
  it('a resume waits for a write that flagged a task as it began, then clears that flag too', async () => {
    const schema = `${prefix}_flag_race`;
    schemas.push(schema);
    const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
    const task = newTask({ options: { queue: 'held' } });
    await store.insert([task]);
    const claim = () => store.claim({ types: [ECHO], limit: 5, owner: 'o', workerId: 'w', leaseMs: 30_000, now: Date.now() });
    expect((await claim()).map((lease) => lease.id)).toEqual([task.id]);
    await store.pauseQueue('held', Date.now());

    // Another replica's release of the task, its transaction still open: the task is QUEUED and flagged there.
    const other = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await other.connect();
    try {
      const { rows } = await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await other.query('BEGIN');
      expect((await other.query(SQL.release, [task.id, 1, Date.now()])).rowCount).toBe(1);
      const resumed = store.resumeQueue('held');
      // The resume's delete of the pause row waits for that transaction...
      await waitFor(
        async () => (await other.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))', [rows[0]!.pid])).rowCount === 1,
        { timeoutMs: 5_000, what: 'the resume to wait for the open release' },
      );
      await other.query('COMMIT');
      // ...and then clears the flag the release wrote: the task is claimable.
      expect(await resumed).toBe(true);
    } finally {
      await other.end();
    }
    expect((await claim()).map((lease) => lease.id)).toEqual([task.id]);
    await store.close();
  });
});

describe('postgres schema version 6', () => {
  it('flags the waiting tasks of queues paused before it', async () => {
    const schema = `${prefix}_version_5`;
    schemas.push(schema);
    const store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
    const held = newTask({ options: { queue: 'held', priority: 5 } });
    const free = newTask({ options: { queue: 'free' } });
    await store.insert([held, free]);
    await store.pauseQueue('held', Date.now());
    await store.close();
    // Back to version 5's schema: no flags, and every QUEUED task in tasks_ready.
    const client = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await client.connect();
    await client.query(`
      DROP INDEX tasks_ready; DROP INDEX tasks_paused; ALTER TABLE tasks DROP COLUMN paused;
      CREATE INDEX tasks_ready ON tasks (type, priority DESC, seq) WHERE state = 2;
      DROP INDEX tasks_queued_due; CREATE INDEX tasks_queued_due ON tasks (queue, run_at) WHERE state = 2;
      UPDATE taskwire_schema SET version = 5;`);
    await client.end();

    const upgraded = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
    const claim = () => upgraded.claim({ types: [ECHO], limit: 5, owner: 'o', workerId: 'w', leaseMs: 10_000, now: Date.now() });
    const check = new pg.Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
    await check.connect();
    expect((await check.query(`SELECT id FROM tasks WHERE ${READY}`)).rows).toEqual([{ id: free.id }]);
    await check.end();
    expect((await claim()).map((lease) => lease.id)).toEqual([free.id]);
    await upgraded.resumeQueue('held');
    expect((await claim()).map((lease) => lease.id)).toEqual([held.id]);
    await upgraded.close();
  });
});

interface PlanNode {
  readonly 'Index Name'?: string;
  readonly 'Actual Rows': number;
  readonly 'Actual Loops': number;
  readonly 'Rows Removed by Filter'?: number;
  readonly Plans?: readonly PlanNode[];
}

const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];

describe('postgres replicas share', () => {
  it('pauses and resumes: the other replica hears at once and its claims skip the queue', async () => {
    const schema = `${prefix}_pauses`;
    schemas.push(schema);
    const [a, b] = await Promise.all([0, 1].map(() => createPostgresStore({ connectionString: POSTGRES_URL, schema })));
    const heard: Array<[string, boolean]> = [];
    const resumed = deferred();
    b!.onQueuePause((queue, paused) => {
      heard.push([queue, paused]);
      if (!paused) resumed.resolve();
    });
    const task = newTask({ options: { queue: 'held' } });
    await a!.insert([task]);
    await a!.pauseQueue('held', Date.now());
    const claimB = () => b!.claim({ types: [ECHO], limit: 5, owner: 'session-b', workerId: 'w', leaseMs: 30_000, now: Date.now() });
    expect(await claimB()).toEqual([]);
    expect(await b!.pausedQueues()).toEqual(['held']);
    await a!.resumeQueue('held');
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no resume heard on the other replica')), 10_000));
    await Promise.race([resumed.promise, timeout]);
    expect(heard).toEqual([
      ['held', true],
      ['held', false],
    ]);
    expect((await claimB()).map((lease) => lease.id)).toEqual([task.id]);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('worker sessions: each replica sees the other’s until they are removed or expire', async () => {
    const schema = `${prefix}_workers`;
    schemas.push(schema);
    const [a, b] = await Promise.all([0, 1].map(() => createPostgresStore({ connectionString: POSTGRES_URL, schema })));
    const entry = (replica: string, sessionId: string) => ({
      replica,
      sessionId,
      workerId: `worker-${sessionId}`,
      taskTypes: [ECHO],
      slots: 4,
      running: 1,
      labels: { zone: 'a' },
      version: '1',
      peer: '127.0.0.1:1',
      connectedAt: 1_000,
      lastSeenAt: 2_000,
    });
    const now = Date.now();
    await a!.workers!.put([entry('ra', 's1'), entry('ra', 's2')], now + 10_000);
    await b!.workers!.put([entry('rb', 's3')], now + 100);
    expect((await b!.workers!.list(now)).map((w) => [w.replica, w.sessionId])).toEqual([
      ['ra', 's1'],
      ['ra', 's2'],
      ['rb', 's3'],
    ]);
    expect((await b!.workers!.list(now))[0]).toEqual(entry('ra', 's1'));
    await a!.workers!.remove(['s2']);
    // s3 was not refreshed: past its expiry it is gone from every answer.
    expect((await a!.workers!.list(now + 200)).map((w) => w.sessionId)).toEqual(['s1']);
    await Promise.all([a!.close(), b!.close()]);
  });
});

describe('postgres migrations', () => {
  it('let replicas that start together on a new schema all come up', async () => {
    const schema = `${prefix}_race`;
    schemas.push(schema);
    const stores = await Promise.all(Array.from({ length: 5 }, () => createPostgresStore({ connectionString: POSTGRES_URL, schema })));
    expect(stores).toHaveLength(5);
    await Promise.all(stores.map((store) => store.close()));
  });
});

describe('postgres concurrency keys across replicas', () => {
  it('never run two tasks of a key at once, in order, when replicas claim together', async () => {
    const schema = `${prefix}_keys_replicas`;
    schemas.push(schema);
    const [a, b] = await Promise.all([0, 1].map(() => createPostgresStore({ connectionString: POSTGRES_URL, schema })));
    const chain = Array.from({ length: 30 }, (_, i) => newTask({ id: `k${String(i).padStart(2, '0')}`, options: { concurrencyKey: 'K', concurrencyLimit: 1 } }));
    await a.insert(chain);
    const order: string[] = [];
    for (let round = 0; order.length < chain.length && round < 200; round++) {
      const claims = await Promise.all(
        [a, b, a, b].map((store, i) => store.claim({ types: [ECHO], limit: 5, owner: `s${i}`, workerId: `w${i}`, leaseMs: 10_000, now: Date.now() })),
      );
      const leases = claims.flat();
      expect(leases.length).toBeLessThanOrEqual(1);
      for (const lease of leases) {
        order.push(lease.id);
        await (round % 2 === 0 ? a : b).complete([{ id: lease.id, attempt: lease.attempt, output: { typeUrl: 'x', value: Buffer.from('') } }], Date.now());
      }
    }
    expect(order).toEqual(chain.map((t) => t.id));
    await Promise.all([a.close(), b.close()]);
  });
});

describe('postgres events across replicas', () => {
  it('carry an output too large for a notification: the other replica reads it back', async () => {
    const schema = `${prefix}_events`;
    schemas.push(schema);
    const [a, b] = await Promise.all([0, 1].map(() => createPostgresStore({ connectionString: POSTGRES_URL, schema })));
    const succeeded = deferred<TaskEvent>();
    b!.subscribe((events) => {
      for (const event of events) if (event.state === TaskState.TASK_STATE_SUCCEEDED) succeeded.resolve(event);
    });
    const task = newTask();
    await a!.insert([task]);
    const [lease] = await a!.claim({ types: [ECHO], limit: 1, owner: 'session-a', workerId: 'w', leaseMs: 30_000, now: Date.now() });
    const output = { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.alloc(20_000, 7) };
    await a!.complete([{ id: task.id, attempt: lease!.attempt, output }], Date.now());

    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no SUCCEEDED event on the other replica')), 10_000));
    const event = await Promise.race([succeeded.promise, timeout]);
    expect(event).toMatchObject({ id: task.id, attempt: lease!.attempt, owner: 'session-a' });
    expect(event.output?.typeUrl).toBe(output.typeUrl);
    expect(Buffer.from(event.output!.value)).toEqual(output.value);
    await Promise.all([a!.close(), b!.close()]);
  });
});
