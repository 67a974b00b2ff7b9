import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState, type Task } from '../../gen/ts/taskwire/v1/task.js';
import { TaskView } from '../../gen/ts/taskwire/v1/task_service.js';
import { TaskMethodOptions } from '../../gen/ts/taskwire/v1/options.js';
import { createClient, pack, unpack, type TaskwireClient } from '../../src/client/index.js';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { createTaskwireServer } from '../../src/server/index.js';
import type { Store } from '../../src/store/index.js';
import { createWorker, type Worker } from '../../src/worker/index.js';
import { waitFor } from '../helpers/wait.js';
import { openTestStore } from '../helpers/stores.js';
import { startCli } from '../helpers/processes.js';

const ECHO = '/demo.v1.DemoService/Echo';
const CHAIN = Number(process.env.TASKWIRE_KEY_CHAIN ?? 1000);
const WORKERS = 8;
const quiet = () => pino({ level: 'silent' });

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function openStore(kind: 'sqlite' | 'postgres'): Promise<Store> {
  return openTestStore(kind, 'keys', (cleanup) => cleanups.push(cleanup));
}

async function allTasks(client: TaskwireClient): Promise<Task[]> {
  const tasks: Task[] = [];
  let pageToken = '';
  do {
    const page = await client.list({ pageSize: 1000, pageToken, view: TaskView.TASK_VIEW_FULL });
    tasks.push(...page.tasks);
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return tasks.reverse(); // the store's order: submission order
}

describe.each(['sqlite', 'postgres'] as const)('a concurrency key at limit 1 (%s)', (kind) => {
  it(`runs ${CHAIN} tasks submitted in order strictly one at a time, in order, across ${WORKERS} workers, while other keys flow`, async () => {
    const server = createTaskwireServer({ store: await openStore(kind), logger: quiet(), leaseMs: 5_000 });
    server.addTaskService(DemoServiceDefinition);
    const port = await server.listen('127.0.0.1:0');
    const address = `127.0.0.1:${port}`;
    const workers: Worker[] = [];
    const client = createClient({ server: address });
    cleanups.push(async () => {
      client.close();
      await Promise.all(workers.map((w) => w.stop()));
      await server.shutdown();
    });
    for (let i = 0; i < WORKERS; i++) {
      const worker = createWorker({ server: address, logger: quiet(), concurrency: 4, workerId: `w${i}` });
      worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
      workers.push(worker);
      await worker.start();
    }
    const text = (i: number) => `chain ${i}`;
    const chain = await client.submitMany(
      Array.from({ length: CHAIN }, (_, i) => ({ type: ECHO, input: pack(EchoRequest, { text: text(i), payload: Buffer.alloc(0) }), options: { concurrencyKey: 'account-1' } })),
    );
    // Submitted after the whole chain: 200 tasks over 100 other keys, and 100 with none.
    const others = await client.submitMany(
      Array.from({ length: 300 }, (_, i) => ({
        type: ECHO,
        input: pack(EchoRequest, { text: `other ${i}`, payload: Buffer.alloc(0) }),
        ...(i < 200 ? { options: { concurrencyKey: `account-${2 + (i % 100)}` } } : {}),
      })),
    );
    await waitFor(async () => (await client.get(chain.at(-1)!.id)).state === TaskState.TASK_STATE_SUCCEEDED, {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: 'the last task of the chain',
    });
    const tasks = await allTasks(client);
    const ids = new Set(chain.map((s) => s.id));
    const ran = tasks.filter((t) => ids.has(t.id));
    expect(ran.map((t) => unpack(EchoRequest, t.input!).text)).toEqual(Array.from({ length: CHAIN }, (_, i) => text(i)));
    const workersSeen = new Set<string>();
    for (const [i, task] of ran.entries()) {
      expect(task.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
      expect(unpack(EchoResponse, task.output!).text).toBe(text(i));
      workersSeen.add(task.workerId);
      if (i > 0) expect(task.startTime!.getTime(), `task ${i} started before task ${i - 1} finished`).toBeGreaterThanOrEqual(ran[i - 1]!.finishTime!.getTime());
    }
    expect(workersSeen.size).toBeGreaterThan(1);
    // The other keys did not queue behind the chain: all of them were done before its last task was.
    const otherIds = new Set(others.map((s) => s.id));
    const finishedOthers = tasks.filter((t) => otherIds.has(t.id));
    expect(finishedOthers.every((t) => t.state === TaskState.TASK_STATE_SUCCEEDED)).toBe(true);
    const lastOther = Math.max(...finishedOthers.map((t) => t.finishTime!.getTime()));
    expect(lastOther).toBeLessThan(ran.at(-1)!.finishTime!.getTime());
    console.log(`${kind}: ${CHAIN} tasks of one key over ${workersSeen.size} workers in ${ran.at(-1)!.finishTime!.getTime() - ran[0]!.startTime!.getTime()} ms; the 300 others done ${ran.at(-1)!.finishTime!.getTime() - lastOther} ms before the chain`);
  }, 180_000);
});

describe('keys with tasks waiting', () => {
  it('show in GetQueueStats and taskwire stats, most waiting first', async () => {
    const server = createTaskwireServer({ store: await openStore('sqlite'), logger: quiet() });
    server.addTaskService(DemoServiceDefinition);
    const port = await server.listen('127.0.0.1:0');
    const client = createClient({ server: `127.0.0.1:${port}` });
    cleanups.push(async () => {
      client.close();
      await server.shutdown();
    });
    const input = pack(EchoRequest, { text: 'x', payload: Buffer.alloc(0) });
    await client.submitMany([
      ...Array.from({ length: 3 }, () => ({ type: ECHO, input, options: { concurrencyKey: 'account-1' } })),
      { type: ECHO, input, options: { concurrencyKey: 'account-2' } },
      { type: ECHO, input },
    ]);
    const [stats] = await client.stats('default');
    expect(stats).toMatchObject({ queued: 5, waitingKeyCount: 2, waitingKeys: [{ key: 'account-1', waiting: 3, running: 0 }, { key: 'account-2', waiting: 1, running: 0 }] });
    const cli = startCli(['--server', `127.0.0.1:${port}`, 'stats']);
    const line = await cli.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('default:'));
    expect(line.msg).toMatch(/; 2 keys waiting \(waiting\/running\): account-1 3\/0, account-2 1\/0$/);
    expect(await cli.exited).toBe(0);
  });
});

describe('a task type whose (taskwire.v1.task) option names a key field', () => {
  /** The demo service with `(taskwire.v1.task) = { concurrency_key_field: <field>, concurrency_limit: 2 }` on Echo. */
  function keyedDemo(field: string) {
    const option = new BinaryWriter().bytes(TaskMethodOptions.encode({ ...TaskMethodOptions.fromPartial({}), concurrencyKeyField: field, concurrencyLimit: 2 }).finish()).finish();
    const echo = { ...DemoServiceDefinition.methods.echo, options: { _unknownFields: { [(51234 << 3) | 2]: [option] } } };
    return { ...DemoServiceDefinition, methods: { ...DemoServiceDefinition.methods, echo } };
  }

  it('keys each task by that field of its input unless the submit names a key', async () => {
    const server = createTaskwireServer({ store: await openStore('sqlite'), logger: quiet() });
    server.addTaskService(keyedDemo('text'));
    const port = await server.listen('127.0.0.1:0');
    const client = createClient({ server: `127.0.0.1:${port}` });
    cleanups.push(async () => {
      client.close();
      await server.shutdown();
    });
    const input = (text: string) => pack(EchoRequest, { text, payload: Buffer.alloc(0) });
    const byField = await client.get((await client.submit(ECHO, input('customer-7'))).id);
    expect(byField.options).toMatchObject({ concurrencyKey: 'customer-7', concurrencyLimit: 2 });
    const own = await client.get((await client.submit(ECHO, input('customer-7'), { concurrencyKey: 'mine', concurrencyLimit: 1 })).id);
    expect(own.options).toMatchObject({ concurrencyKey: 'mine', concurrencyLimit: 1 });
    const none = await client.get((await client.submit(ECHO, input(''))).id);
    expect(none.options).toMatchObject({ concurrencyKey: '', concurrencyLimit: 0 });
    const tooMany = await client.submit(ECHO, input('x'), { concurrencyLimit: 5000 }).catch((e: unknown) => e);
    expect(String(tooMany)).toMatch(/options\.concurrency_limit must be in 1\.\.1000; got 5000/);
  });

  it('is refused at registration when the input has no such field', () => {
    const server = createTaskwireServer({ dbPath: ':memory:', logger: quiet() });
    expect(() => server.addTaskService(keyedDemo('customer_id'))).toThrow(
      '/demo.v1.DemoService/Echo: concurrency_key_field "customer_id" is not a field of its input message',
    );
    return server.shutdown();
  });
});
