import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EchoRequest, EchoResponse, SleepRequest } from '../gen/ts/demo/v1/demo.js';
import { TaskState } from '../gen/ts/taskwire/v1/task.js';
import type { ConnectRequest } from '../gen/ts/taskwire/v1/worker_service.js';
import { createClient, pack, unpack, type TaskwireClient } from '../src/client/index.js';
import { startRecordingProxy, type Entry, type RecordingProxy } from './proxy.js';

/** The built CLI, which runs the server under test (`npm run conformance` builds it first). */
const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const OUTPUT_TYPES: Record<string, string> = {
  [ECHO]: 'type.googleapis.com/demo.v1.EchoResponse',
  [SLEEP]: 'type.googleapis.com/demo.v1.SleepResponse',
};
/** What the kit gives the worker, and the server's settings the checks count on. */
const SLOTS = 3;
const WORKER_GRACE_MS = 1_500;
const LEASE_MS = 4_500;

export interface ConformanceOptions {
  /** A shell command that starts the worker under test. */
  readonly worker: string;
  /** Called as each check ends. */
  readonly onResult?: (result: CheckResult) => void;
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  /** What was measured, or what went wrong. */
  readonly detail: string;
}

/** A child process with its output kept (the last lines say why it failed). */
class Child {
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  constructor(readonly process: ChildProcess) {
    this.exited = new Promise((resolve) => {
      process.once('exit', (code, signal) => resolve(code ?? (signal === null ? null : -1)));
      process.once('error', (error) => {
        this.output.push(`could not start: ${error.message}`);
        resolve(null);
      });
    });
    for (const stream of [process.stdout, process.stderr]) {
      if (stream !== null) createInterface({ input: stream }).on('line', (line) => this.output.push(line));
    }
  }
  get running() {
    return this.process.exitCode === null && this.process.signalCode === null;
  }
  tail(n = 8) {
    return this.output.slice(-n).join('\n');
  }
}

/**
 * A command line as words, with leading NAME=value words as environment:
 * single and double quotes group, a backslash escapes. The worker is then the
 * kit's own child, so SIGTERM reaches it and its exit code is its own.
 */
export function parseCommand(text: string): { env: Record<string, string>; argv: string[] } {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i];
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote !== undefined) throw new Error(`unbalanced ${quote} in the worker command: ${text}`);
  if (word !== undefined) words.push(word);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) {
    const [name, ...value] = words.shift()!.split('=');
    env[name!] = value.join('=');
  }
  if (words.length === 0) throw new Error(`the worker command names no program: "${text}"`);
  return { env, argv: words };
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `promise` does, or rejects after `ms` with `what`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const fromWorker = (entry: Entry): entry is Extract<Entry, { from: 'worker' }> => entry.from === 'worker';
const fromServer = (entry: Entry): entry is Extract<Entry, { from: 'server' }> => entry.from === 'server';
const key = (taskId: string, attempt: number) => `${taskId}#${attempt}`;

/**
 * Runs a real server, starts the worker under test against it through a
 * recording proxy, and checks its side of docs/PROTOCOL.md: Hello, credit,
 * heartbeats, output types, cancel, drain, resume after a server restart
 * without running a task twice, and stopping on SIGTERM.
 */
export async function runConformance(options: ConformanceOptions): Promise<CheckResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-conformance-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const results: CheckResult[] = [];
  let server: Child | undefined;
  let worker: Child | undefined;
  let proxy: RecordingProxy | undefined;
  let client: TaskwireClient | undefined;

  async function startServer(): Promise<Child> {
    const child = new Child(
      spawn(process.execPath, [CLI, 'server', '--listen', address, '--db', join(dir, 'tasks.db'), '--lease-ms', String(LEASE_MS), '--grace-ms', '10000'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    await within(15_000, `the server to listen on ${address}:\n${child.tail()}`, new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (child.output.some((line) => line.includes('"msg":"listening"'))) {
          clearInterval(check);
          resolve();
        } else if (!child.running) {
          clearInterval(check);
          reject(new Error(`the server exited:\n${child.tail()}`));
        }
      }, 20);
    }));
    return child;
  }

  const check = async (name: string, run: () => Promise<string>) => {
    let result: CheckResult;
    try {
      // Checks after a worker that never connected, or that died, would only time out one by one.
      if (!transcript().some((e) => fromServer(e) && e.message.welcome !== undefined) && results.length > 0) {
        throw new Error('not run: the worker never connected');
      }
      if (worker !== undefined && !worker.running) throw new Error(`not run: the worker exited (${worker.process.exitCode ?? worker.process.signalCode})`);
      result = { name, ok: true, detail: await run() };
    } catch (error) {
      const workerOutput = worker === undefined ? '' : `\n  worker output:\n${worker.tail().replace(/^/gm, '    ')}`;
      result = { name, ok: false, detail: `${error instanceof Error ? error.message : String(error)}${workerOutput}` };
    }
    results.push(result);
    options.onResult?.(result);
  };

  const transcript = () => proxy!.transcript;
  const sessions = () => new Set(transcript().map((e) => e.session));
  const latestSession = () => Math.max(0, ...sessions());
  const waitRunning = async (id: string) => {
    for (let i = 0; i < 500; i++) {
      const task = await client!.get(id);
      if (task.state === TaskState.TASK_STATE_RUNNING) return task;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`task ${id} did not start running within 10 s`);
  };
  const assignmentsOf = (id: string) =>
    transcript()
      .filter(fromServer)
      .flatMap((e) => e.message.assignments.filter((a) => a.taskId === id).map((a) => ({ ...a, at: e.at, session: e.session })));

  try {
    server = await startServer();
    proxy = await startRecordingProxy(address);
    client = createClient({ server: address });
    const command = parseCommand(options.worker);
    worker = new Child(
      spawn(command.argv[0]!, command.argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          ...command.env,
          TASKWIRE_SERVER: proxy.address,
          TASKWIRE_CONCURRENCY: String(SLOTS),
          TASKWIRE_GRACE_MS: String(WORKER_GRACE_MS),
        },
      }),
    );

    await check('hello: the first message says Hello with the protocol, its slots and its task types', async () => {
      const first = await Promise.race([
        proxy!.waitFor((e) => e.from === 'worker', 20_000, 'no message from the worker (is it connecting to TASKWIRE_SERVER?)'),
        worker!.exited.then((code) => {
          throw new Error(`the worker exited (${code}) before saying anything`);
        }),
      ]);
      const hello = (first as Extract<Entry, { from: 'worker' }>).message.hello;
      if (hello === undefined) throw new Error('the first message carries no hello');
      if (hello.protocol !== 1) throw new Error(`hello.protocol is ${hello.protocol}, not PROTOCOL_VERSION_1`);
      if (hello.slots !== SLOTS) throw new Error(`hello.slots is ${hello.slots}; the worker was given TASKWIRE_CONCURRENCY=${SLOTS}`);
      for (const type of [ECHO, SLEEP]) if (!hello.taskTypes.includes(type)) throw new Error(`hello.task_types lacks ${type}`);
      const welcome = await proxy!.waitFor((e) => fromServer(e) && e.message.welcome !== undefined, 5_000, 'no Welcome (the server refused the Hello)');
      return `worker_id "${hello.workerId}", slots ${hello.slots}, welcomed as ${(welcome as Extract<Entry, { from: 'server' }>).message.welcome!.sessionId}`;
    });

    await check('results: 30 Echo tasks succeed, each output an Any of the response message', async () => {
      const texts = Array.from({ length: 30 }, (_, i) => `conformance ${i}`);
      const outcomes = await within(20_000, '30 Echo tasks to finish', Promise.all(texts.map((text) => client!.run(ECHO, pack(EchoRequest, { text })))));
      outcomes.forEach((outcome, i) => {
        if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new Error(`Echo "${texts[i]}" ended ${TaskState[outcome.state]}: ${outcome.error?.message}`);
        const text = unpack(EchoResponse, outcome.output).text;
        if (text !== texts[i]) throw new Error(`Echo "${texts[i]}" answered "${text}"`);
      });
      const completes = transcript().filter(fromWorker).flatMap((e) => e.message.completes);
      const typed = new Map(transcript().filter(fromServer).flatMap((e) => e.message.assignments.map((a) => [key(a.taskId, a.attempt), a.type])));
      for (const complete of completes) {
        const expected = OUTPUT_TYPES[typed.get(key(complete.taskId, complete.attempt)) ?? ''];
        if (complete.output?.typeUrl !== expected) throw new Error(`a Complete carries output type "${complete.output?.typeUrl}", not "${expected}"`);
      }
      return `${completes.length} results, all typed`;
    });

    await check(`credit: never more credit than free slots, and every slot given back (${SLOTS} slots, 12 tasks)`, async () => {
      const from = transcript().length;
      const tasks = await client!.submitMany(Array.from({ length: 12 }, () => ({ type: SLEEP, input: pack(SleepRequest, { durationMs: 200 }) })));
      await within(20_000, '12 Sleep tasks to finish', Promise.all(tasks.map((t) => client!.result(t.id))));
      // Replays the server's count of this session's credit and the worker's leases from the transcript.
      const session = latestSession();
      const welcome = transcript().find((e) => fromServer(e) && e.session === session && e.message.welcome !== undefined) as
        | Extract<Entry, { from: 'server' }>
        | undefined;
      const hello = transcript().find((e) => fromWorker(e) && e.session === session && e.message.hello !== undefined) as Extract<Entry, { from: 'worker' }>;
      const held = new Set((welcome?.message.welcome?.resumed ?? []).map((r) => key(r.taskId, r.attempt)));
      let credit = SLOTS - held.size;
      let worst = 0;
      for (const entry of transcript()) {
        if (entry.session !== session || entry === hello) continue;
        if (fromServer(entry)) {
          for (const a of entry.message.assignments) {
            held.add(key(a.taskId, a.attempt));
            credit--;
          }
          for (const c of entry.message.cancels) held.delete(key(c.taskId, c.attempt));
        } else if (fromWorker(entry)) {
          const m: ConnectRequest = entry.message;
          for (const r of [...m.completes, ...m.fails, ...m.releases]) held.delete(key(r.taskId, r.attempt));
          credit += m.credit;
          worst = Math.max(worst, held.size + credit - SLOTS);
        }
      }
      if (worst > 0) throw new Error(`the worker granted ${worst} more credit than it had free slots`);
      // Every slot back: the worker's credit and leases add up to its slots again.
      if (held.size + credit !== SLOTS) throw new Error(`after all tasks, leases (${held.size}) + credit (${credit}) = ${held.size + credit}, not ${SLOTS}: a slot was not given back`);
      const assigned = transcript().slice(from).filter(fromServer).reduce((n, e) => n + e.message.assignments.length, 0);
      return `${assigned} assignments, never over-granted, all ${SLOTS} slots back`;
    });

    await check('heartbeats: something at least every heartbeat interval, running or idle', async () => {
      const session = latestSession();
      const welcome = transcript().find((e) => fromServer(e) && e.session === session && e.message.welcome !== undefined) as Extract<Entry, { from: 'server' }>;
      const interval = welcome.message.welcome!.heartbeatInterval!;
      const intervalMs = interval.seconds * 1000 + interval.nanos / 1e6;
      const start = Date.now();
      const { id } = await client!.submit(SLEEP, pack(SleepRequest, { durationMs: Math.round(intervalMs * 2.5) }));
      await within(20_000, 'the Sleep task to finish', client!.result(id));
      await new Promise((resolve) => setTimeout(resolve, intervalMs * 2)); // idle, on purpose: heartbeats must go on
      const times = transcript().filter((e) => fromWorker(e) && e.session === session && e.at >= start).map((e) => e.at);
      times.unshift(start);
      times.push(Date.now());
      let gap = 0;
      for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
      // The cutoff is the lease; the bound checked is twice the interval, well inside it.
      if (gap > intervalMs * 2) throw new Error(`a gap of ${gap} ms between messages; heartbeat_interval is ${intervalMs} ms (the lease, ${LEASE_MS} ms, is the cutoff)`);
      return `longest gap ${gap} ms, interval ${intervalMs} ms`;
    });

    await check('cancel: a cancelled attempt stops, sends no Complete, and its slot comes back', async () => {
      const { id } = await client!.submit(SLEEP, pack(SleepRequest, { durationMs: 30_000, steps: 30 }));
      const { attempt } = await waitRunning(id);
      await client!.cancel(id, 'conformance');
      const cancel = await proxy!.waitFor((e) => fromServer(e) && e.message.cancels.some((c) => c.taskId === id), 5_000, 'the server to send Cancel');
      const back = await proxy!.waitFor(
        (e) => fromWorker(e) && e.at >= cancel.at && e.message.credit > 0,
        3_000,
        'the worker to give the cancelled attempt\'s slot back (credit) after Cancel',
      );
      const completed = transcript().some((e) => fromWorker(e) && e.message.completes.some((c) => c.taskId === id && c.attempt === attempt));
      if (completed) throw new Error('the worker sent a Complete for a cancelled attempt');
      return `slot back ${back.at - cancel.at} ms after Cancel`;
    });

    await check('restart: after the server is killed, the worker reconnects, resumes its attempt and runs it once', async () => {
      const { id } = await client!.submit(SLEEP, pack(SleepRequest, { durationMs: 3_000 }));
      const { attempt } = await waitRunning(id);
      const before = latestSession();
      server!.process.kill('SIGKILL');
      await server!.exited;
      const downAt = Date.now();
      server = await startServer();
      const upAt = Date.now();
      const welcome = await proxy!.waitFor(
        (e) => fromServer(e) && e.session > before && e.message.welcome !== undefined,
        15_000,
        'the worker to connect again (be welcomed) after the server restarted',
      );
      const hello = transcript().find((e) => fromWorker(e) && e.session === welcome.session && e.message.hello !== undefined) as Extract<Entry, { from: 'worker' }>;
      if (!hello.message.hello!.resume.some((r) => r.taskId === id && r.attempt === attempt)) {
        throw new Error(`the new Hello does not resume attempt ${attempt} of the running task (resume: ${JSON.stringify(hello.message.hello!.resume)})`);
      }
      const outcome = await within(20_000, 'the resumed task to finish', client!.result(id));
      if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED || outcome.attempt !== attempt) {
        throw new Error(`the task ended ${TaskState[outcome.state]} at attempt ${outcome.attempt}, not SUCCEEDED at ${attempt}: ${outcome.error?.message ?? ''}`);
      }
      const assigned = assignmentsOf(id).length;
      if (assigned !== 1) throw new Error(`the task was assigned ${assigned} times; it must run once`);
      return `down ${upAt - downAt} ms, welcomed again ${welcome.at - upAt} ms after the server was back, resumed and finished at attempt ${attempt}`;
    });

    await check('drain: on Drain the worker finishes what it runs, sends the result, takes nothing new, and reconnects', async () => {
      const { id } = await client!.submit(SLEEP, pack(SleepRequest, { durationMs: 1_000 }));
      await waitRunning(id);
      const session = latestSession();
      server!.process.kill('SIGTERM'); // the server drains its workers, then exits
      const drain = await proxy!.waitFor((e) => fromServer(e) && e.session === session && e.message.drain !== undefined, 5_000, 'the server to send Drain');
      const result = await proxy!.waitFor(
        (e) => fromWorker(e) && e.session === session && e.message.completes.some((c) => c.taskId === id),
        8_000,
        'the worker to send the running task\'s result on the draining session',
      );
      const creditAfter = transcript().filter((e) => fromWorker(e) && e.session === session && e.at > drain.at).reduce((n, e) => n + (e as Extract<Entry, { from: 'worker' }>).message.credit, 0);
      if (creditAfter > 0) throw new Error(`the worker returned ${creditAfter} credit after Drain; a draining worker takes nothing new`);
      await within(15_000, 'the server to exit after its drain', server!.exited);
      server = await startServer();
      const again = await proxy!.waitFor((e) => fromServer(e) && e.session > session && e.message.welcome !== undefined, 15_000, 'the worker to be welcomed again after the drain');
      const outcome = await within(10_000, 'the drained task\'s outcome', client!.result(id));
      if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new Error(`the task ended ${TaskState[outcome.state]}`);
      return `result ${result.at - drain.at} ms after Drain, reconnected ${again.at - drain.at} ms after it`;
    });

    await check(`SIGTERM: the worker hands back what still runs within its grace (${WORKER_GRACE_MS} ms) and exits 0`, async () => {
      const { id } = await client!.submit(SLEEP, pack(SleepRequest, { durationMs: 60_000, steps: 60 }));
      const { attempt } = await waitRunning(id);
      const sentAt = Date.now();
      worker!.process.kill('SIGTERM');
      const release = await proxy!.waitFor(
        (e) => fromWorker(e) && e.message.releases.some((r) => r.taskId === id && r.attempt === attempt),
        WORKER_GRACE_MS + 5_000,
        'the worker to Release the running attempt',
      );
      const code = await within(WORKER_GRACE_MS + 10_000, 'the worker to exit', worker!.exited);
      if (code !== 0) throw new Error(`the worker exited with ${code}, not 0`);
      const task = await client!.get(id);
      if (task.state !== TaskState.TASK_STATE_QUEUED || task.errors.length > 0) {
        throw new Error(`the released task is ${TaskState[task.state]} with ${task.errors.length} errors; a release is not a failure`);
      }
      await client!.cancel(id, 'conformance done');
      return `released ${release.at - sentAt} ms after SIGTERM, exited 0 after ${Date.now() - sentAt} ms`;
    });
  } finally {
    client?.close();
    if (worker?.running) {
      worker.process.kill('SIGKILL');
      await worker.exited;
    }
    if (server?.running) {
      server.process.kill('SIGKILL');
      await server.exited;
    }
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
