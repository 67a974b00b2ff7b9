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
import { TaskOrder, TaskService, TaskView, type ListTasksRequestSchema } from '../ui/gen/taskwire/v1/task_service_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
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

type Filter = Omit<MessageInitShape<typeof ListTasksRequestSchema>, 'pageSize' | 'view' | 'pageToken' | '$typeName'>;
const page = (filter: Filter) => () =>
  api.listTasks({ ...filter, pageSize: 50, view: TaskView.BASIC });
const second = (filter: Filter) => async () => {
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
  // The filters of issue 16: times, labels, error code, order, and a bulk action's dry run.
  const newest = (await api.listTasks({ pageSize: 1 })).tasks[0]!.createTime!;
  const ms = (t: { seconds: bigint; nanos: number }) => Number(t.seconds) * 1000 + t.nanos / 1e6;
  const at = (offset: number) => timestampFromMs(ms(newest) + offset);
  await time('Tasks, created in the last second', page({ createdSince: at(-1000) }));
  await time('Tasks, created before the newest minus 1 s', page({ createdBefore: at(-1000) }));
  await time('Tasks, label batch=999 (newest)', page({ labels: { batch: String(Math.floor((N - 1) / 1000)) } }));
  await time('Tasks, label batch=0 (oldest: a scan)', page({ labels: { batch: '0' } }), 5);
  await time('Tasks, error code 14 (none: a full scan)', page({ errorCode: 14 }), 5);
  await time('Tasks, finished since 1 h (none: a full scan)', page({ finishedSince: at(-3_600_000) }), 5);
  await time('Tasks, oldest first, first two pages', second({ order: TaskOrder.OLDEST_FIRST }));
  await time('RetryTasks dry run, state=failed (none)', () => api.retryTasks({ filter: { states: [TaskState.FAILED] }, dryRun: true }), 5);
  await time('CancelTasks dry run, label batch=999, 1000 of them', () => api.cancelTasks({ filter: { labels: { batch: String(Math.floor((N - 1) / 1000)) } }, dryRun: true }), 5);
  await time('Overview, GetQueueStats', () => api.getQueueStats({}), 5);
} finally {
  await killAll([server.proc]);
  rmSync(dir, { recursive: true, force: true });
}
