import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { pino } from 'pino';
import { DemoServiceDefinition, demoHandlers } from '../../demo/handlers.js';
import { onShutdownSignals } from '../../rpc/index.js';
import { createWorker, type Worker } from '../../worker/index.js';
import type { GlobalOptions } from '../main.js';
import { env } from '../env.js';

interface WorkerCommandOptions {
  concurrency: string;
  demo?: boolean;
  workerId?: string;
  graceMs: string;
  logLevel: string;
}

/** A worker module's default export: registers handlers on the worker. */
export type WorkerModule = (worker: Worker) => void | Promise<void>;

export function workerCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('worker')
    .description('run a worker: connect to the server and run tasks')
    .argument('[module]', 'module whose default export is (worker) => { worker.implement(Definition, handlers) }')
    .option('--concurrency <n>', 'tasks run at once', env('TASKWIRE_CONCURRENCY') ?? '4')
    .option('--demo', 'serve the demo task service (demo.v1.DemoService)')
    .option('--worker-id <id>', 'stable worker id (default: host-pid)', env('TASKWIRE_WORKER_ID'))
    .option('--grace-ms <ms>', 'on SIGTERM, how long running tasks may finish before they are handed back', env('TASKWIRE_GRACE_MS') ?? '30000')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', env('TASKWIRE_LOG_LEVEL') ?? 'info')
    .action(async (module: string | undefined, options: WorkerCommandOptions) => {
      const { server, token, tls } = globals();
      if (module === undefined && !options.demo) throw new Error('give a handler module, or --demo for the demo service');
      const worker = createWorker({
        server,
        concurrency: Number(options.concurrency),
        ...(options.workerId ? { workerId: options.workerId } : {}),
        ...(token ? { token } : {}),
        ...(tls ? { tls } : {}),
        shutdownGraceMs: Number(options.graceMs),
        logger: pino({ name: 'taskwire-worker', level: options.logLevel }),
      });
      if (options.demo) worker.implement(DemoServiceDefinition, demoHandlers(worker.workerId));
      if (module !== undefined) {
        const loaded = (await import(pathToFileURL(resolve(module)).href)) as { default?: WorkerModule };
        if (typeof loaded.default !== 'function') throw new Error(`${module} has no default export (worker) => void`);
        await loaded.default(worker);
      }
      onShutdownSignals(() => worker.stop());
      await worker.start();
    });
}
