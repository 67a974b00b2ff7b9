import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import { DemoServiceDefinition, demoHandlers } from '../../demo/handlers.js';
import { onShutdownSignals } from '../../rpc/index.js';
import { createWorker, type Worker } from '../../worker/index.js';
import { MAX_CONCURRENCY } from '../../worker/worker.js';
import type { GlobalOptions } from '../global-options.js';
import { choice, duration, integer, listenAddress, LOG_LEVELS } from '../values.js';

interface WorkerCommandOptions {
  concurrency: number;
  demo?: boolean;
  workerId?: string;
  graceMs: number;
  metricsListen?: string;
  logLevel: (typeof LOG_LEVELS)[number];
}

/** A worker module's default export: registers handlers on the worker. */
export type WorkerModule = (worker: Worker) => void | Promise<void>;

export function workerCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('worker')
    .description('run a worker: connect to the server and run tasks')
    .argument('[module]', 'module whose default export is (worker) => { worker.implement(Definition, handlers) }')
    .addOption(
      new Option('--concurrency <n>', `tasks run at once (1..${MAX_CONCURRENCY})`)
        .env('TASKWIRE_CONCURRENCY')
        .default(4)
        .argParser(integer(1, MAX_CONCURRENCY)),
    )
    .option('--demo', 'serve the demo task service (demo.v1.DemoService)')
    .addOption(new Option('--worker-id <id>', 'stable worker id (default: host-pid)').env('TASKWIRE_WORKER_ID'))
    .addOption(
      new Option('--grace-ms <duration>', 'on SIGTERM, how long running tasks may finish before they are handed back (0..1h)')
        .env('TASKWIRE_GRACE_MS')
        .default(30_000, '30s')
        .argParser(duration(0, 3_600_000)),
    )
    .addOption(
      new Option('--metrics-listen <address>', 'serve Prometheus metrics at GET /metrics on this address, e.g. 127.0.0.1:9465')
        .env('TASKWIRE_METRICS_LISTEN')
        .argParser(listenAddress),
    )
    .addOption(new Option('--log-level <level>', LOG_LEVELS.join(', ')).env('TASKWIRE_LOG_LEVEL').default('info').argParser(choice(LOG_LEVELS)))
    .action(async (module: string | undefined, options: WorkerCommandOptions) => {
      const { server, token, tls } = globals();
      if (module === undefined && !options.demo) throw new Error('give a handler module, or --demo for the demo service');
      const worker = createWorker({
        server,
        concurrency: options.concurrency,
        ...(options.workerId ? { workerId: options.workerId } : {}),
        ...(token ? { token } : {}),
        ...(tls ? { tls } : {}),
        shutdownGraceMs: options.graceMs,
        ...(options.metricsListen === undefined ? {} : { metricsListen: options.metricsListen }),
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
      // A refusal on a later reconnect (a token revoked, say) ends the process non-zero too.
      await worker.done;
    });
}
