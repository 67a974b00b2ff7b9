import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { createClient, type TaskwireClient } from '../../src/client/index.js';
import { createTaskwireServer, type TaskServiceOptions, type TaskwireServer, type TaskwireServerOptions } from '../../src/server/index.js';
import { createWorker, type TaskHandlers, type Worker, type WorkerOptions } from '../../src/worker/index.js';

const quiet = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A server on a real socket and a real SQLite file, with helpers to add workers and clients. */
export async function startStack(options: Partial<TaskwireServerOptions> = {}, serviceOptions?: TaskServiceOptions<keyof typeof DemoServiceDefinition.methods>) {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-it-'));
  const server: TaskwireServer = createTaskwireServer({
    dbPath: join(dir, 'tasks.db'),
    logger: quiet(),
    leaseMs: 2_000,
    sweepMs: 50,
    shutdownGraceMs: 2_000,
    descriptorSet: 'gen/descriptor.binpb',
    ...options,
  });
  server.addTaskService(DemoServiceDefinition, serviceOptions);
  const port = await server.listen('127.0.0.1:0');
  const address = `127.0.0.1:${port}`;
  const workers: Worker[] = [];
  const clients: TaskwireClient[] = [];
  return {
    server,
    address,
    dir,
    async worker(
      overrides: Partial<WorkerOptions> = {},
      handlers?: (defaults: TaskHandlers<typeof DemoServiceDefinition>) => TaskHandlers<typeof DemoServiceDefinition>,
    ) {
      const worker = createWorker({ server: address, logger: quiet(), concurrency: 4, shutdownGraceMs: 1_000, ...overrides });
      const defaults = demoHandlers(worker.workerId);
      worker.implement(DemoServiceDefinition, handlers === undefined ? defaults : handlers(defaults));
      workers.push(worker);
      await worker.start();
      return worker;
    },
    client() {
      const client = createClient({ server: address });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.close();
      await Promise.all(workers.map((w) => w.stop()));
      await server.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
