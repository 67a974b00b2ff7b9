/**
 * The SQLite store alone, CPU and wall time per task.
 *
 *   B=32 npx tsx bench/tools/store-micro.mts              # phases: insert, claim, complete, each its own commit
 *   MODE=steady B=100 npx tsx bench/tools/store-micro.mts # as a busy server: 2,000 queued, 256 running,
 *                                                         # and each commit inserts, claims and completes B tasks
 * Env: N tasks (default 20,000 phases, 60,000 steady), SYNC=FULL|NORMAL, PAGE_SIZE (a fresh database's),
 * DROP_INDEXES=name,… (what an index costs: the schema without them).
 */
import { newTaskId } from '../../src/broker/ids.js';
import { createSqliteStore } from '../../src/store/index.js';
import { newTask } from '../../test/store/conformance.js';

const steady = process.env.MODE === 'steady';
const N = Number(process.env.N ?? (steady ? 60000 : 20000));
const B = Number(process.env.B ?? (steady ? 100 : 32));
const path = `/tmp/store-micro-${Date.now()}.db`;
if (process.env.PAGE_SIZE) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path);
  db.pragma(`page_size = ${Number(process.env.PAGE_SIZE)}`);
  db.pragma('journal_mode = WAL'); // writes the header: the page size is fixed from here on
  db.close();
}
if (process.env.DROP_INDEXES) {
  await createSqliteStore({ path }).close();
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path);
  for (const name of process.env.DROP_INDEXES.split(',')) db.exec(`DROP INDEX ${name}`);
  db.close();
}
const store = createSqliteStore({ path, commitIntervalMs: 0, synchronous: (process.env.SYNC ?? 'FULL') as 'FULL' });

const ECHO = '/demo.v1.DemoService/Echo';
// The bench's shapes: a 100-byte payload in, the echo's 113 bytes out, a server-sized lease owner.
const input = { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: Buffer.alloc(102, 120) };
const output = { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.alloc(113, 120) };
const owner = '8cb4a62d-84f3-42ab-8168-c5adbd884cb3';
const tasks = (n: number) => Array.from({ length: n }, () => newTask({ id: newTaskId(), input }));
const claim = (limit: number) => store.claim({ types: [ECHO], limit, owner, workerId: 'worker-1', leaseMs: 30000, now: Date.now() });
const complete = (leases: ReadonlyArray<{ id: string; attempt: number }>) =>
  store.complete(leases.map((l) => ({ id: l.id, attempt: l.attempt, output })), Date.now());
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const per = (us: number, n: number) => (us / n).toFixed(1);

if (steady) {
  await store.insert(tasks(2000));
  const running: Array<{ id: string; attempt: number }> = [];
  const warmUp = Math.min(10000, N / 2);
  let t0 = 0;
  let c0 = 0;
  for (let i = 0; i < N + warmUp; i += B) {
    if (i === warmUp) [t0, c0] = [performance.now(), cpu()];
    const done = running.length >= 256 ? running.splice(0, B) : [];
    // Issued in one turn: the group commit runs all three in one transaction.
    const [, leases] = await Promise.all([store.insert(tasks(B)), claim(B), complete(done)]);
    running.push(...leases);
  }
  console.log(`steady B=${B}: µs per task: wall ${per((performance.now() - t0) * 1000, N)}, CPU ${per(cpu() - c0, N)}`);
} else {
  const phases = { insert: 0, claim: 0, complete: 0 };
  const t0 = performance.now();
  for (let i = 0; i < N; i += B) {
    let c = cpu();
    await store.insert(tasks(B));
    phases.insert += cpu() - c;
    c = cpu();
    const leases = await claim(B);
    phases.claim += cpu() - c;
    c = cpu();
    await complete(leases);
    phases.complete += cpu() - c;
  }
  console.log(
    `B=${B}: µs CPU per task: insert ${per(phases.insert, N)}, claim ${per(phases.claim, N)}, complete ${per(phases.complete, N)}; wall ${per((performance.now() - t0) * 1000, N)}`,
  );
}
await store.close();
