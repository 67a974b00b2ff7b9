/**
 * The dashboard's list over a large store: fills a SQLite file with N tasks
 * (default 1,000,000; `TASKS=200000` for fewer), starts the built server on
 * it with an HTTP listener, and times the calls the dashboard makes, as it
 * makes them (Connect, binary, from the protobuf-es client the page uses):
 * the Tasks page's first and second page with each filter, and the
 * overview's GetQueueStats. `npm run bench:dashboard`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { DEFAULT_BACKOFF } from '../src/broker/index.js';
import { createSqliteStore, type NewTask } from '../src/store/index.js';
import { TaskState } from '../ui/gen/taskwire/v1/task_pb.js';
import { TaskService, TaskView } from '../ui/gen/taskwire/v1/task_service_pb.js';
import { killAll, startServerProcess } from '../test/helpers/processes.js';

const N = Number(process.env.TASKS ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'taskwire-dashboard-bench-'));
const db = join(dir, 'tasks.db');

const started = Date.now();
const store = createSqliteStore({ path: db, synchronous: 'NORMAL' });
const TYPES = ['/demo.v1.DemoService/Echo', '/demo.v1.DemoService/Sleep'];
const input = { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: new Uint8Array([10, 2, 104, 105]) };
for (let at = 0; at < N; at += 1000) {
  const batch: NewTask[] = [];
  for (let i = at; i < Math.min(N, at + 1000); i++) {
    batch.push({
      id: randomUUID(),
      type: TYPES[i % 2]!,
      input,
      runAt: 0,
      options: { queue: `queue-${i % 4}`, priority: 0, maxAttempts: 3, backoff: DEFAULT_BACKOFF, labels: { batch: String(Math.floor(i / 1000)) }, traceContext: {} },
    });
  }
  await store.insert(batch);
}
await store.close();
const insertS = (Date.now() - started) / 1000;
console.log(`inserted ${N.toLocaleString()} tasks in ${insertS.toFixed(1)} s (${Math.round(N / insertS).toLocaleString()}/s)`);

const server = await startServerProcess(db, '127.0.0.1:0', ['--http-listen', '127.0.0.1:0', '--sync', 'normal']);
const http = await server.proc.waitForLine((l) => l.msg === 'HTTP listening (Connect, gRPC-Web)');
const api = createClient(TaskService, createConnectTransport({ baseUrl: `http://127.0.0.1:${http.port as number}`, httpVersion: '1.1', useBinaryFormat: true }));

async function time(name: string, call: () => Promise<unknown>, runs = 20) {
  await call(); // warm: prepared statement, page cache
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await call();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  console.log(`${name.padEnd(44)} p50 ${ms[Math.floor(runs / 2)]!.toFixed(1).padStart(7)} ms   max ${ms[runs - 1]!.toFixed(1).padStart(7)} ms`);
}

const page = (filter: { queue?: string; type?: string; state?: TaskState }) => () =>
  api.listTasks({ ...filter, pageSize: 50, view: TaskView.BASIC });
const second = (filter: { queue?: string; type?: string; state?: TaskState }) => async () => {
  const first = await api.listTasks({ ...filter, pageSize: 50, view: TaskView.BASIC });
  return api.listTasks({ ...filter, pageSize: 50, pageToken: first.nextPageToken, view: TaskView.BASIC });
};
try {
  await time('Tasks, no filter', page({}));
  await time('Tasks, no filter, first two pages', second({}));
  await time('Tasks, queue=queue-3', page({ queue: 'queue-3' }));
  await time('Tasks, type=Sleep', page({ type: TYPES[1] }));
  await time('Tasks, state=queued', page({ state: TaskState.QUEUED }));
  await time('Tasks, queue+type+state', page({ queue: 'queue-1', type: TYPES[1], state: TaskState.QUEUED }));
  await time('Tasks, state=failed (none: a full scan)', page({ state: TaskState.FAILED }), 5);
  await time('Overview, GetQueueStats', () => api.getQueueStats({}), 5);
} finally {
  await killAll([server.proc]);
  rmSync(dir, { recursive: true, force: true });
}
