/**
 * The store alone: insert, claim and complete in batches, CPU per task per phase.
 *   B=32 npx tsx bench/tools/store-micro.mts
 */
import { newTaskId } from '../../src/broker/ids.js';
import { createSqliteStore } from '../../src/store/index.js';
import { newTask } from '../../test/store/conformance.js';

const store = createSqliteStore({ path: `/tmp/store-micro-${Date.now()}.db`, commitIntervalMs: 0, synchronous: (process.env.SYNC ?? 'FULL') as 'FULL' });
const N = Number(process.env.N ?? 20000);
const B = Number(process.env.B ?? 32);
const phases = { insert: 0, claim: 0, complete: 0 };
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const t0 = performance.now();
for (let i = 0; i < N; i += B) {
  let c = cpu();
  await store.insert(Array.from({ length: B }, () => newTask({ id: newTaskId() })));
  phases.insert += cpu() - c;
  c = cpu();
  const leases = await store.claim({ types: ['/demo.v1.DemoService/Echo'], limit: B, owner: 's', workerId: 'w', leaseMs: 30000, now: Date.now() });
  phases.claim += cpu() - c;
  c = cpu();
  await store.complete(leases.map((l) => ({ id: l.id, attempt: l.attempt, output: { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.alloc(110) } })), Date.now());
  phases.complete += cpu() - c;
}
const per = (us: number) => (us / N).toFixed(1);
console.log(`B=${B}: µs CPU per task: insert ${per(phases.insert)}, claim ${per(phases.claim)}, complete ${per(phases.complete)}; wall ${((performance.now() - t0) * 1000 / N).toFixed(1)}`);
await store.close();
