/**
 * Server memory with an empty queue and with 200,000 queued tasks: queued
 * tasks live in the store, not in the server's heap.
 *
 *   npm run bench:rss [-- --n 200000 --settle 15]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EchoRequest } from '../gen/ts/demo/v1/demo.js';
import { createClient, pack } from '../src/client/index.js';
import { startServerProcess } from '../test/helpers/processes.js';
import { rssMb } from './lib.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' }, settle: { type: 'string', default: '15' } } });
const n = Number(values.n);
const settleS = Number(values.settle);

const dir = mkdtempSync(join(tmpdir(), 'taskwire-rss-'));
const server = await startServerProcess(join(dir, 'tasks.db'), '127.0.0.1:0', []);
const client = createClient({ server: server.address });
try {
  await client.stats();
  const idle = rssMb(server.proc.pid);
  const input = pack(EchoRequest, { text: 'x'.repeat(100) });
  const started = Date.now();
  for (let sent = 0; sent < n; sent += 1000) {
    await client.submitMany(Array.from({ length: Math.min(1000, n - sent) }, () => ({ type: '/demo.v1.DemoService/Echo', input })));
  }
  const seconds = (Date.now() - started) / 1000;
  const queued = (await client.stats()).reduce((sum, q) => sum + q.queued, 0);
  const loaded = rssMb(server.proc.pid);
  // The same, once the server has sat idle with the tasks queued for a while
  // (V8 shrinks its heap after a burst when the process goes quiet).
  await new Promise((resolve) => setTimeout(resolve, settleS * 1000));
  const settled = rssMb(server.proc.pid);
  console.log(JSON.stringify({ queued, rssIdleMb: idle, rssQueuedMb: loaded, [`rssQueuedAfter${settleS}sMb`]: settled, submitSeconds: seconds, submitsPerSecond: Math.round(n / seconds) }));
} finally {
  client.close();
  await server.proc.kill();
  rmSync(dir, { recursive: true, force: true });
}
