import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built CLI: `npm test` builds it first. */
export const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

/** A child process whose JSON log lines are collected, with a way to wait for one. */
export class Proc {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  readonly #waiters = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (text) => {
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text };
        }
        this.lines.push(line);
        for (const waiter of this.#waiters) {
          if (waiter.match(line)) {
            this.#waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
      });
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (past or future) that matches, or fails after `timeoutMs`. */
  waitForLine(match: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no matching log line within ${timeoutMs} ms; last lines: ${JSON.stringify(this.lines.slice(-5))}`));
      }, timeoutMs);
      this.#waiters.add({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }

  /** SIGKILL, then wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}

export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Proc {
  return new Proc(spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** A `taskwire server` child; resolves once it listens, with its address. */
export async function startServerProcess(db: string, listen = '127.0.0.1:0', extra: readonly string[] = []) {
  const proc = startCli(['server', '--listen', listen, '--db', db, '--lease-ms', '2000', '--grace-ms', '3000', ...extra]);
  const line = await proc.waitForLine((l) => l.msg === 'listening').catch(async (error: unknown) => {
    await proc.kill(); // a server that did not come up is not left behind
    throw error;
  });
  return { proc, port: line.port as number, address: `127.0.0.1:${line.port as number}` };
}

export function startWorkerProcess(address: string, workerId: string, extra: readonly string[] = []): Proc {
  return startCli(['--server', address, 'worker', '--demo', '--worker-id', workerId, '--grace-ms', '1000', ...extra]);
}

/** Ends every process still running: SIGKILL, since a test that failed may have left them in any state. */
export async function killAll(procs: readonly Proc[]): Promise<void> {
  await Promise.all(procs.map((p) => p.kill()));
}
