/**
 * npm run bench:keys -- [--n 10000] [--runs 2]
 *
 * What concurrency keys cost: the same N Echo tasks with no key, then each
 * with a key of its own (N distinct keys at limit 1, so none waits for
 * another), alternately, on one in-process SQLite server with 4 in-process
 * workers of 32 slots. Tasks/s is submit of the first to the result of the
 * last. One process: figures compare the two runs, not other benchmarks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { EchoRequest } from '../gen/ts/demo/v1/demo.js';
import { createClient, pack } from '../src/client/index.js';
import { DemoServiceDefinition, demoHandlers } from '../src/demo/handlers.js';
import { createTaskwireServer } from '../src/server/index.js';
import { createWorker } from '../src/worker/index.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '10000' }, runs: { type: 'string', default: '2' } } });
const n = Number(values.n);
const runs = Number(values.runs);
const ECHO = '/demo.v1.DemoService/Echo';

async function run(keyed: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-bench-keys-'));
  const logger = pino({ level: 'silent' });
  const server = createTaskwireServer({ dbPath: join(dir, 'tasks.db'), logger });
  server.addTaskService(DemoServiceDefinition);
  const address = `127.0.0.1:${await server.listen('127.0.0.1:0')}`;
  const workers = Array.from({ length: 4 }, (_, i) => createWorker({ server: address, logger, concurrency: 32, workerId: `bench-${i}` }));
  for (const worker of workers) {
    worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
    await worker.start();
  }
  const client = createClient({ server: address });
  const input = pack(EchoRequest, { text: 'bench', payload: Buffer.alloc(0) });
  const started = performance.now();
  const submitted = await client.submitMany(
    Array.from({ length: n }, (_, i) => ({ type: ECHO, input, ...(keyed ? { options: { concurrencyKey: `key-${i}` } } : {}) })),
  );
  await Promise.all(submitted.map((s) => client.result(s.id)));
  const seconds = (performance.now() - started) / 1000;
  client.close();
  await Promise.all(workers.map((w) => w.stop()));
  await server.shutdown();
  rmSync(dir, { recursive: true, force: true });
  return n / seconds;
}

const results: Record<string, number[]> = { 'no keys': [], [`${n} distinct keys, limit 1`]: [] };
for (let i = 0; i < runs; i++) {
  results['no keys']!.push(await run(false));
  results[`${n} distinct keys, limit 1`]!.push(await run(true));
}
for (const [name, rates] of Object.entries(results)) {
  console.log(`${name.padEnd(28)} ${rates.map((r) => `${Math.round(r)} tasks/s`).join(', ')}`);
}
