import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServiceDefinition } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { createClient } from '../../src/client/index.js';
import { killAll, startCli, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/** Every flag and TASKWIRE_* variable is checked at start; a process that cannot work exits non-zero and says why. */

let procs: Proc[] = [];
let dir: string;

afterEach(async () => {
  await killAll(procs);
  procs = [];
  rmSync(dir, { recursive: true, force: true });
});

function setup() {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-settings-'));
  return join(dir, 'tasks.db');
}

/** Runs the CLI to its exit (bounded), with what it wrote to stderr. */
async function run(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000) {
  const proc = startCli(args, env);
  procs.push(proc);
  const timer = setTimeout(() => proc.signal('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  const stderr = proc.lines.map((l) => (typeof l.msg === 'string' && Object.keys(l).length === 1 ? l.msg : JSON.stringify(l)));
  return { code, lines: stderr, text: stderr.join('\n') };
}

// An address nothing listens on: the CLI must fail on the flag before it tries to connect.
const NOWHERE = '127.0.0.1:9';

describe('a bad value stops the command at start with one line naming it', () => {
  it.each([
    [['server', '--lease-ms', 'abc'], {}, /--lease-ms.*'abc'.*500ms\.\.1h/],
    [['server', '--lease-ms', '0'], {}, /--lease-ms.*500ms\.\.1h/],
    [['server', '--lease-ms', '-5'], {}, /--lease-ms.*500ms\.\.1h/],
    [['server'], { TASKWIRE_LEASE_MS: '30x' }, /--lease-ms.*from env 'TASKWIRE_LEASE_MS'.*500ms\.\.1h/],
    [['server', '--grace-ms', 'abc'], {}, /--grace-ms.*0ms\.\.1h/],
    [['server', '--log-level', 'loud'], {}, /--log-level.*fatal, error, warn, info, debug/],
    [['server', '--retain-succeeded', 'forever'], {}, /--retain-succeeded.*'forever'.*0ms\.\.3650d/],
    [['server', '--retain-failed', '-1d'], {}, /--retain-failed.*0ms\.\.3650d/],
    [['server'], { TASKWIRE_RETAIN_CANCELLED: '1y' }, /--retain-cancelled.*TASKWIRE_RETAIN_CANCELLED.*0ms\.\.3650d/],
    [['server', '--retain-failed', '3651d'], {}, /--retain-failed.*0ms\.\.3650d/],
    [['server'], { TASKWIRE_SYNC: 'sometimes' }, /--sync.*TASKWIRE_SYNC.*full, normal/],
    [['worker', '--demo', '--concurrency', '0'], {}, /--concurrency.*1\.\.10000/],
    [['worker', '--demo', '--concurrency', '20000'], {}, /--concurrency.*1\.\.10000/],
    [['worker', '--demo', '--concurrency', 'abc'], {}, /--concurrency.*1\.\.10000/],
    [['worker', '--demo'], { TASKWIRE_CONCURRENCY: '-5' }, /--concurrency.*TASKWIRE_CONCURRENCY.*1\.\.10000/],
    [['--server', NOWHERE, 'submit', '/demo.v1.DemoService/Echo', '--priority', 'abc'], {}, /--priority.*0\.\.1000/],
    [['--server', NOWHERE, 'submit', '/demo.v1.DemoService/Echo', '--delay-ms', '1 day'], {}, /--delay-ms.*30s/],
    [['--server', NOWHERE, 'submit', '/demo.v1.DemoService/Echo', '--max-attempts', '-1'], {}, /--max-attempts.*1\.\.100/],
    [['--server', NOWHERE, 'submit', '/demo.v1.DemoService/Echo', '--max-attempts', '0'], {}, /--max-attempts.*1\.\.100/],
    [['--server', NOWHERE, 'list', '--limit', 'abc'], {}, /--limit.*1\.\.1000/],
    [['--server', NOWHERE, 'list', '--state', 'done'], {}, /--state.*succeeded/],
    [['--server', NOWHERE, 'health', '--timeout-ms', 'abc'], {}, /--timeout-ms/],
    [['--server', 'host:99999', 'list'], {}, /--server.*port/],
  ])('%j %j', async (args, env, message) => {
    setup();
    const { code, lines, text } = await run([...args, ...(args[0] === 'server' ? ['--db', join(dir, 'x.db'), '--listen', '127.0.0.1:0'] : [])], env);
    expect(code).not.toBe(0);
    expect(lines).toHaveLength(1);
    expect(text).toMatch(message);
    expect(existsSync(join(dir, 'x.db'))).toBe(false);
  });

  it('with --json, the error is a JSON line', async () => {
    setup();
    const { code, lines } = await run(['--json', '--server', NOWHERE, 'list', '--limit', '0']);
    expect(code).not.toBe(0);
    const parsed = JSON.parse(lines[0]!) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe('INVALID_ARGUMENT');
    expect(parsed.error.message).toMatch(/--limit/);
  });

  it('durations take units', async () => {
    const db = setup();
    const server = await startServerProcess(db, '127.0.0.1:0', ['--drain-delay-ms', '0s']);
    procs.push(server.proc);
    const { code } = await run(['--server', server.address, 'health', '--timeout-ms', '5s']);
    expect(code).toBe(0);
  });
});

describe('retention flags', () => {
  it('--retain-succeeded and TASKWIRE_RETAIN_FAILED reach the cleaner: a succeeded task goes, a failed one kept by 0 stays', async () => {
    const db = setup();
    const proc = startCli(['server', '--listen', '127.0.0.1:0', '--db', db, '--retain-succeeded', '500ms'], { TASKWIRE_RETAIN_FAILED: '0' });
    procs.push(proc);
    const port = (await proc.waitForLine((l) => l.msg === 'listening')).port as number;
    const worker = startWorkerProcess(`127.0.0.1:${port}`, 'retention-worker');
    procs.push(worker);
    const client = createClient({ server: `127.0.0.1:${port}` });
    try {
      const demo = client.service(DemoServiceDefinition);
      const done = await demo.echo.submit({ text: 'goes' });
      const dead = await demo.fail.submit({ permanent: true, code: 3, message: 'stays' });
      await done.result();
      await dead.result().catch(() => undefined);
      await waitFor(async () => (await client.get(done.id).then(() => false, (e: unknown) => (e as { code?: number }).code === 5)), {
        what: 'the succeeded task to be deleted',
      });
      expect((await client.get(dead.id)).state).toBe(TaskState.TASK_STATE_FAILED);
    } finally {
      client.close();
    }
  });
});

describe('a server that cannot serve says what to fix', () => {
  it('an invalid --listen fails before the database file is made', async () => {
    const db = setup();
    const { code, text } = await run(['server', '--listen', 'localhost', '--db', db]);
    expect(code).not.toBe(0);
    expect(text).toMatch(/--listen.*host:port/);
    expect(existsSync(db)).toBe(false);
  });

  it('a port in use', async () => {
    const db = setup();
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const { code, text } = await run(['server', '--listen', `127.0.0.1:${port}`, '--db', db]);
      expect(code).not.toBe(0);
      expect(text).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
    } finally {
      holder.close();
    }
  });

  it('a --db path that cannot be a database names the path', async () => {
    setup();
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const { code, text } = await run(['server', '--listen', '127.0.0.1:0', '--db', join(file, 'tasks.db')]);
    expect(code).not.toBe(0);
    expect(text).toContain(`cannot open the SQLite database "${join(file, 'tasks.db')}"`);
    expect(text).toMatch(/--db/);
  });
});

describe('TLS from the command line', () => {
  it('--tls-cert and --tls-key after `server` are the server’s: it serves TLS, not plaintext', async () => {
    const db = setup();
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=server');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext');
    const server = await startServerProcess(db, '127.0.0.1:0', ['--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key')]);
    procs.push(server.proc);
    expect((await run(['--server', server.address, '--tls-ca', join(dir, 'ca.pem'), 'health'])).code).toBe(0);
    const plaintext = await run(['--server', server.address, 'health', '--timeout-ms', '2s']);
    expect(plaintext.code).not.toBe(0);
  });
});

describe('a worker the server refuses exits non-zero with the reason', () => {
  it('a token the server does not accept', async () => {
    const db = setup();
    const secured = startCli(['server', '--listen', '127.0.0.1:0', '--db', db], { TASKWIRE_TOKENS: 'worker:right-token' });
    procs.push(secured);
    const line = await secured.waitForLine((l) => l.msg === 'listening');
    const { code, text } = await run(['--server', `127.0.0.1:${line.port as number}`, '--token', 'wrong-token', 'worker', '--demo']);
    expect(code).not.toBe(0);
    expect(text).toMatch(/the server refused this worker: UNAUTHENTICATED/);
  });
});
