import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MultiBar, Presets } from 'cli-progress';
import { Option, type Command } from 'commander';
import { EchoRequest, FailRequest, SleepRequest } from '../../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../../gen/ts/taskwire/v1/task.js';
import { createClient, pack, type SubmitItem } from '../../client/index.js';
import type { GlobalOptions } from '../global-options.js';
import { integer } from '../values.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const SERVICE = '/demo.v1.DemoService';

interface DemoOptions {
  echo: number;
  sleep: number;
  workers: number;
}

/** Starts a `taskwire server` child and resolves with its port, read from its log. */
function startServer(db: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [MAIN, 'server', '--listen', '127.0.0.1:0', '--db', db, '--grace-ms', '3000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; port?: number };
      if (entry.msg === 'listening' && entry.port !== undefined) resolve({ child, port: entry.port });
    });
    child.once('exit', (code) => reject(new Error(`the server exited with code ${code} before listening`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export function demoCommand(program: Command, _globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description('run a server and two workers, push a batch of demo tasks through them, and summarise')
    .addOption(new Option('--echo <n>', 'echo tasks (0..1000000)').default(2000).argParser(integer(0, 1_000_000)))
    .addOption(new Option('--sleep <n>', 'sleep tasks that report progress (0..10000)').default(16).argParser(integer(0, 10_000)))
    .addOption(new Option('--workers <n>', 'worker processes (1..16)').default(2).argParser(integer(1, 16)))
    .action(async (o: DemoOptions) => {
      const dir = mkdtempSync(join(tmpdir(), 'taskwire-demo-'));
      const db = join(dir, 'taskwire.db');
      const children: ChildProcess[] = [];
      const shutdown = async () => {
        await Promise.all(children.slice(1).map(stop));
        if (children[0]) await stop(children[0]);
      };
      process.once('SIGINT', () => void shutdown().then(() => process.exit(130)));

      const { child: server, port } = await startServer(db);
      children.push(server);
      const address = `127.0.0.1:${port}`;
      for (let i = 1; i <= o.workers; i++) {
        children.push(
          spawn(process.execPath, [MAIN, '--server', address, 'worker', '--demo', '--concurrency', '16', '--worker-id', `demo-worker-${i}`, '--log-level', 'warn'], {
            stdio: 'inherit',
          }),
        );
      }
      console.log(`server on ${address} (database ${db}), ${o.workers} workers\n`);

      const client = createClient({ server: address });
      const kinds: Record<string, SubmitItem[]> = {
        echo: Array.from({ length: o.echo }, (_, i) => ({ type: `${SERVICE}/Echo`, input: pack(EchoRequest, { text: `hello ${i}` }) })),
        sleep: Array.from({ length: o.sleep }, (_, i) => ({
          type: `${SERVICE}/Sleep`,
          input: pack(SleepRequest, { durationMs: 500 + 100 * (i % 8), steps: 5 }),
        })),
        flaky: Array.from({ length: 20 }, () => ({
          type: `${SERVICE}/Fail`,
          input: pack(FailRequest, { failAttempts: 1, message: 'transient failure' }),
          options: { backoff: { initialMs: 200 } },
        })),
        broken: Array.from({ length: 5 }, () => ({
          type: `${SERVICE}/Fail`,
          input: pack(FailRequest, { permanent: true, message: 'this input can never work', code: 3 }),
        })),
      };

      // Bars on a terminal; one line per kind when the output is a log.
      const bars = process.stdout.isTTY
        ? new MultiBar({ format: '{kind} {bar} {value}/{total} done', hideCursor: true }, Presets.shades_classic)
        : undefined;
      const started = Date.now();
      const counts = { succeeded: 0, failed: 0, cancelled: 0, retried: 0 };
      await Promise.all(
        Object.entries(kinds).map(async ([kind, items]) => {
          const bar = bars?.create(items.length, 0, { kind: kind.padEnd(6) });
          const submitted = await client.submitMany(items);
          await Promise.all(
            submitted.map(async ({ id }) => {
              const outcome = await client.result(id);
              if (outcome.state === TaskState.TASK_STATE_SUCCEEDED) counts.succeeded++;
              else if (outcome.state === TaskState.TASK_STATE_FAILED) counts.failed++;
              else counts.cancelled++;
              if (outcome.attempt > 1) counts.retried++;
              bar?.increment();
            }),
          );
          if (bars === undefined) console.log(`${kind.padEnd(6)} ${items.length}/${items.length} done`);
        }),
      );
      bars?.stop();
      const seconds = (Date.now() - started) / 1000;
      const total = Object.values(kinds).reduce((n, items) => n + items.length, 0);
      console.log(
        `\n${total} tasks in ${seconds.toFixed(2)} s (${Math.round(total / seconds)} tasks/s): ` +
          `${counts.succeeded} succeeded, ${counts.failed} failed (the dead letter), ${counts.retried} needed a retry\n`,
      );
      console.log('To look around yourself, start a server and a worker (two terminals), then:');
      console.log('  npm run taskwire -- server                # 127.0.0.1:50051, ./data/taskwire.db');
      console.log('  npm run taskwire -- worker --demo');
      console.log(`  npm run taskwire -- submit ${SERVICE}/Sleep '{"durationMs": 3000, "steps": 10}' --wait`);
      console.log('  npm run taskwire -- list --state failed   |   stats   |   workers');
      console.log('  grpcurl -plaintext 127.0.0.1:50051 list   # reflection is on\n');
      client.close();
      await shutdown();
      console.log('demo finished; server and workers stopped cleanly');
    });
}
