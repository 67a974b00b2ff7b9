/**
 * Where a task's submit → result time goes, at a fixed rate: the stages
 * between the producer's submit, the stored create/start/finish times and
 * the result reaching the producer (wall clock, ms resolution of the store).
 *
 *   npm run build && npx tsx bench/tools/latency-stages.ts [rate] [seconds] [workers] [settle seconds]
 *
 * With a settle time, the rate runs that long unmeasured first (as the
 * bench's --settle), so the processes are in their steady state.
 */
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { createClient, pack } from '../../src/client/index.js';
import { percentile } from '../lib.js';
import { session, waitForWorkers } from '../targets/taskwire.js';

const [rate = 1000, seconds = 5, workers = 4, settle = 0] = process.argv.slice(2).map(Number);
const setup = await session.setup({ target: 'taskwire', n: 0, workers, size: 100, mode: 'latency', rate, durationS: seconds, settleS: 0, inflight: 0, slots: 32 });
const address = String(setup.info.address);
await waitForWorkers(address, workers);
const client = createClient({ server: address });
const samples: Array<{ submit: number; result: number; id: string }> = [];
const payload = Buffer.alloc(100, 7);
const run = async () => {
  const submit = Date.now() + (performance.now() % 1);
  const outcome = await client.run('/demo.v1.DemoService/Echo', pack(EchoRequest, { payload }));
  samples.push({ submit, result: Date.now(), id: outcome.taskId });
};
for (let i = 0; i < 500; i++) await run(); // warm-up
/** Runs tasks at `rate` for `forSeconds`, each submitted at its time. */
async function atRate(forSeconds: number): Promise<void> {
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let sent = 0; sent < rate * forSeconds; ) {
    const due = Math.min(rate * forSeconds, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    for (; sent < due; sent++) pending.push(run());
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
}
if (settle > 0) await atRate(settle);
samples.length = 0;
await atRate(seconds);

const stages: Record<string, number[]> = { 'submit → created': [], 'created → started': [], 'started → finished': [], 'finished → result seen': [], total: [] };
const ms = (t: Date | undefined) => t?.getTime() ?? NaN;
for (const s of samples.slice(0, 2000)) {
  const task = await client.get(s.id);
  const [created, started, finished] = [ms(task.createTime), ms(task.startTime), ms(task.finishTime)];
  stages['submit → created']!.push(created - Math.floor(s.submit));
  stages['created → started']!.push(started - created);
  stages['started → finished']!.push(finished - started);
  stages['finished → result seen']!.push(s.result - finished);
  stages.total!.push(s.result - Math.floor(s.submit));
}
console.log(`${samples.length} tasks at ${rate}/s, ${workers} workers; stages of the first 2000 (ms, store times have ms resolution)`);
console.log('| stage | p50 | p90 | p99 |\n|---|---:|---:|---:|');
for (const [name, values] of Object.entries(stages)) {
  values.sort((a, b) => a - b);
  console.log(`| ${name} | ${percentile(values, 50)} | ${percentile(values, 90)} | ${percentile(values, 99)} |`);
}
client.close();
await setup.teardown();
