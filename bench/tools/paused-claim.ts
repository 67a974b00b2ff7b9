/**
 * What a claim costs beside a paused queue's backlog (issue 16): BACKLOG
 * QUEUED tasks of one type in a paused queue, inserted first (so they come
 * first in the ready index's order), and a few of the same type in an active
 * queue; then N claims of one task, each handed back (released) so the next
 * finds the same few. Prints each claim's p50 and p99, and how long the pause
 * and the resume took.
 *
 *   npx tsx bench/tools/paused-claim.ts                       # SQLite, a fresh file in /tmp
 *   BACKLOG=0 npx tsx bench/tools/paused-claim.ts             # the same with nothing paused
 *   STORE=postgres npx tsx bench/tools/paused-claim.ts        # PostgreSQL at TASKWIRE_TEST_POSTGRES (a schema of its own, dropped after)
 *
 * Env: BACKLOG (default 100,000), ACTIVE (default 5), N claims (default 500),
 * SYNC=FULL|NORMAL (SQLite; default FULL, the server's: each claim's time
 * includes its commit's fsync; NORMAL leaves mostly the statement).
 */
import { rmSync } from 'node:fs';
import pg from 'pg';
import { newTaskId } from '../../src/broker/ids.js';
import { createPostgresStore, createSqliteStore, type Store } from '../../src/store/index.js';
import { ECHO, newTask } from '../../test/store/conformance.js';

const BACKLOG = Number(process.env.BACKLOG ?? 100_000);
const ACTIVE = Number(process.env.ACTIVE ?? 5);
const N = Number(process.env.N ?? 500);
const postgres = process.env.STORE === 'postgres';
const url = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `bench_paused_${process.pid}`;
const path = `/tmp/paused-claim-${process.pid}.db`;

const store: Store = postgres
  ? await createPostgresStore({ connectionString: url, schema })
  : createSqliteStore({ path, commitIntervalMs: 0, synchronous: process.env.SYNC === 'NORMAL' ? 'NORMAL' : 'FULL' });

const tasks = (n: number, queue: string) => Array.from({ length: n }, () => newTask({ id: newTaskId(), options: { queue } }));
for (let left = BACKLOG; left > 0; left -= 1000) await store.insert(tasks(Math.min(left, 1000), 'held'));
let started = performance.now();
if (BACKLOG > 0) await store.pauseQueue('held', Date.now());
const pauseMs = performance.now() - started;
await store.insert(tasks(ACTIVE, 'free'));

const times: number[] = [];
for (let i = 0; i < N; i++) {
  const now = Date.now();
  started = performance.now();
  const [lease] = await store.claim({ types: [ECHO], limit: 1, owner: 'owner-1', workerId: 'worker-1', leaseMs: 30_000, now });
  times.push(performance.now() - started);
  if (lease === undefined || lease.queue !== 'free') throw new Error(`claim ${i} took ${lease === undefined ? 'nothing' : `a task of queue ${lease.queue}`}`);
  await store.release([{ id: lease.id, attempt: lease.attempt }], now);
}
times.sort((a, b) => a - b);
const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(3);

started = performance.now();
if (BACKLOG > 0) await store.resumeQueue('held');
const resumeMs = performance.now() - started;
console.log(
  `${postgres ? 'postgres' : `sqlite (synchronous ${process.env.SYNC === 'NORMAL' ? 'NORMAL' : 'FULL'})`}: backlog ${BACKLOG} paused, ${ACTIVE} active, ${N} claims: ` +
    `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms; pause took ${pauseMs.toFixed(0)} ms, resume ${resumeMs.toFixed(0)} ms`,
);

await store.close();
if (postgres) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA ${schema} CASCADE`);
  await client.end();
} else {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
}
