import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = `${ROOT}dist/src/cli/main.js`;

/** Parameters every target understands, with the same meaning. */
export interface BenchParams {
  readonly target: string;
  readonly n: number;
  readonly workers: number;
  readonly size: number;
  readonly mode: 'throughput' | 'latency';
  readonly rate: number;
  readonly durationS: number;
  /** Latency mode: seconds at the rate before the measured part, unmeasured. */
  readonly settleS: number;
  readonly inflight: number;
  readonly slots: number;
}

/** utime + stime of a process, in milliseconds (Linux, 100 ticks per second); 0 once it has exited. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuSplitMs(pid);
  return user + system;
}

/** User and kernel CPU time of a process, in milliseconds. */
export function cpuSplitMs(pid: number): { user: number; system: number } {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return { user: 0, system: 0 };
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Math.round(Number(line.split(/\s+/)[1]) / 1024);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A child process that prints JSON lines; resolves `ready` on the first line with ready: true. */
export class Child {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly exited: Promise<number | null>;
  #waiters: Array<{ match: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => process.once('exit', (code) => resolve(code)));
    createInterface({ input: process.stdout! }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { text };
      }
      this.lines.push(line);
      this.#waiters = this.#waiters.filter((w) => !(w.match(line) && (w.resolve(line), true)));
    });
    process.stderr?.on('data', (chunk: Buffer) => {
      if (process.exitCode !== null || /error/i.test(chunk.toString())) globalThis.process.stderr.write(`[${name}] ${chunk}`);
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  waitFor(match: (line: Record<string, unknown>) => boolean, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no expected line in ${timeoutMs} ms (last: ${JSON.stringify(this.lines.slice(-3))})`)), timeoutMs);
      this.#waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void this.exited.then((code) => reject(new Error(`${this.name} exited with ${code}`)));
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5_000);
    this.process.kill(signal);
    await this.exited;
    clearTimeout(timer);
  }
}

export function startNode(name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Child {
  return new Child(name, spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** A bench script in TypeScript, run by node itself with tsx's loader: one process to measure. */
export function startScript(name: string, script: string, args: readonly string[] = []): Child {
  return startNode(name, ['--import', 'tsx', `${ROOT}bench/${script}`, ...args]);
}

export function payload(size: number): Buffer {
  return Buffer.alloc(size, 'x');
}

/** A free TCP port on 127.0.0.1 (bound, then released for the child to take). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a target starts in the orchestrator: the processes to measure and what the producer needs. */
export interface Setup {
  readonly children: readonly Child[];
  /** Processes the target uses but did not start (a system RabbitMQ, Redis, PostgreSQL), measured too; looked up when measuring starts. */
  readonly external?: () => ReadonlyArray<{ readonly name: string; readonly pid: number }>;
  readonly info: Record<string, unknown>;
  teardown(): Promise<void>;
}

/** What a target gives the producer process. */
export interface Producer {
  /** Submits one task; resolves when its result is seen. */
  run(payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface Target {
  setup(params: BenchParams): Promise<Setup>;
  producer(params: BenchParams, info: Record<string, unknown>): Promise<Producer>;
}

/** The pid of a running system process whose command line matches, for measuring a broker we did not start. */
export function findPid(pattern: RegExp): number | undefined {
  return findPids(pattern)[0];
}

/** Every running process whose command line matches. */
export function findPids(pattern: RegExp): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (pattern.test(cmdline)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
