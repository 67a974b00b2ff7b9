import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as https from 'node:https';
import { createClient as createConnectClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { createRegistry } from '../../src/http/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolesFor, type Role } from '../../src/server/index.js';
import { tokenAuth } from '../../src/server/index.js';
import { pino } from 'pino';
import { createClient } from '../../src/client/index.js';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { createWorker } from '../../src/worker/index.js';
import { startStack } from '../helpers/inprocess.js';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl for this run. */
function makeCertificates(dir: string) {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=taskwire test CA');
  for (const [name, san] of [['server', 'IP:127.0.0.1'], ['client', 'DNS:client']] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
  const read = (file: string) => readFileSync(join(dir, file));
  return { ca: read('ca.pem'), serverCert: read('server.pem'), serverKey: read('server.key'), clientCert: read('client.pem'), clientKey: read('client.key') };
}

const TOKENS: Record<Role, string> = { client: 'client-secret', worker: 'worker-secret', admin: 'admin-secret' };

/** Every method the server has, and how to call it with an empty message. */
const METHODS: Array<{ path: string; stream: 'unary' | 'server' | 'bidi' }> = [
  ...['SubmitTask', 'SubmitTasks', 'GetTask', 'CancelTask', 'RetryTask', 'ListTasks', 'ListWorkers', 'GetQueueStats', 'RetryTasks', 'CancelTasks', 'PauseQueue', 'ResumeQueue', 'DeleteTask', 'PurgeQueue'].map((m) => ({
    path: `/taskwire.v1.TaskService/${m}`,
    stream: 'unary' as const,
  })),
  ...['CreateSchedule', 'UpdateSchedule', 'PauseSchedule', 'ResumeSchedule', 'DeleteSchedule', 'GetSchedule', 'ListSchedules'].map((m) => ({
    path: `/taskwire.v1.ScheduleService/${m}`,
    stream: 'unary' as const,
  })),
  { path: '/taskwire.v1.TaskService/WatchTask', stream: 'server' },
  { path: '/taskwire.v1.TaskService/Session', stream: 'bidi' },
  { path: '/taskwire.v1.WorkerService/Connect', stream: 'bidi' },
  { path: '/demo.v1.DemoService/Echo', stream: 'unary' },
  { path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', stream: 'bidi' },
  { path: '/grpc.health.v1.Health/Check', stream: 'unary' },
];

const identity = (b: Buffer) => b;

/** Calls a method with an empty message (and a bound), resolving with the status code. */
function call(client: grpc.Client, path: string, stream: 'unary' | 'server' | 'bidi', token: string | undefined): Promise<grpc.status> {
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  const options = { deadline: Date.now() + 1_500 };
  return new Promise((resolve) => {
    if (stream === 'unary') {
      client.makeUnaryRequest(path, identity, identity, Buffer.alloc(0), metadata, options, (error) => resolve(error?.code ?? grpc.status.OK));
      return;
    }
    const s =
      stream === 'server'
        ? client.makeServerStreamRequest(path, identity, identity, Buffer.alloc(0), metadata, options)
        : client.makeBidiStreamRequest(path, identity, identity, metadata, options);
    s.on('data', () => undefined);
    s.on('status', (status: grpc.StatusObject) => resolve(status.code));
    s.on('error', () => undefined);
    if (stream === 'bidi') {
      const duplex = s as grpc.ClientDuplexStream<Buffer, Buffer>;
      duplex.write(Buffer.alloc(0));
      duplex.end();
    }
  });
}

let dir: string;
let certs: ReturnType<typeof makeCertificates>;
let stack: Awaited<ReturnType<typeof startStack>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-tls-'));
  certs = makeCertificates(dir);
  stack = await startStack({
    tls: { cert: certs.serverCert.toString(), key: certs.serverKey.toString(), clientCa: certs.ca.toString() },
    auth: tokenAuth(Object.entries(TOKENS).map(([role, token]) => ({ role: role as Role, token }))),
    httpListen: '127.0.0.1:0',
  });
});

afterAll(async () => {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('access control over mutual TLS', () => {
  const mtls = () => new grpc.Client(stack.address, grpc.credentials.createSsl(certs.ca, certs.clientKey, certs.clientCert));

  it('answers every method × role as the role table says', async () => {
    const client = mtls();
    const rows: string[] = [];
    for (const { path, stream } of METHODS) {
      for (const role of [undefined, 'client', 'worker', 'admin'] as const) {
        const code = await call(client, path, stream, role === undefined ? undefined : TOKENS[role]);
        rows.push(`${path} ${role ?? 'none'} ${grpc.status[code]}`);
        if (path.startsWith('/grpc.health.v1.')) {
          expect(code, `${path} as ${role ?? 'nobody'}`).toBe(grpc.status.OK);
        } else if (role === undefined) {
          expect(code, `${path} without a token`).toBe(grpc.status.UNAUTHENTICATED);
        } else if (!rolesFor(path).includes(role)) {
          expect(code, `${path} as ${role}`).toBe(grpc.status.PERMISSION_DENIED);
        } else {
          expect([grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED], `${path} as ${role}`).not.toContain(code);
        }
      }
    }
    expect(rows).toHaveLength(METHODS.length * 4);
    // Schedules submit tasks on their own for as long as they live: theirs is the admin role.
    for (const { path } of METHODS.filter((m) => m.path.includes('ScheduleService'))) expect(rolesFor(path)).toEqual(['admin']);
    // The queue controls are the admin's alone.
    for (const method of ['PauseQueue', 'ResumeQueue', 'DeleteTask', 'PurgeQueue']) {
      expect(rolesFor(`/taskwire.v1.TaskService/${method}`)).toEqual(['admin']);
    }
    client.close();
  });

  it('runs a task end to end with a worker token and a client token over mTLS', async () => {
    const tls = { ca: certs.ca.toString(), cert: certs.clientCert.toString(), key: certs.clientKey.toString() };
    const worker = createWorker({ server: stack.address, workerId: 'tls-worker', tls, token: TOKENS.worker, logger: pino({ level: 'silent' }) });
    worker.implement(DemoServiceDefinition, demoHandlers('tls-worker'));
    await worker.start();
    const client = createClient({ server: stack.address, tls, token: TOKENS.client });
    expect(await client.service(DemoServiceDefinition).echo.call({ text: 'secure' })).toMatchObject({ text: 'secure', workerId: 'tls-worker' });
    // The client role may not list workers; the admin may.
    await expect(client.workers()).rejects.toThrow(/PERMISSION_DENIED|may not call/);
    const admin = createClient({ server: stack.address, tls, token: TOKENS.admin });
    expect((await admin.workers()).map((w) => w.workerId)).toEqual(['worker/tls-worker']); // with tokens on, <token name>/<worker id>
    client.close();
    admin.close();
    await worker.stop();
  });

  it('refuses a wrong token, and a client without a certificate', async () => {
    const client = mtls();
    expect(await call(client, '/taskwire.v1.TaskService/GetTask', 'unary', 'not-a-token')).toBe(grpc.status.UNAUTHENTICATED);
    client.close();
    const noCert = new grpc.Client(stack.address, grpc.credentials.createSsl(certs.ca));
    expect(await call(noCert, '/grpc.health.v1.Health/Check', 'unary', undefined)).toBe(grpc.status.UNAVAILABLE);
    noCert.close();
    const plaintext = new grpc.Client(stack.address, grpc.credentials.createInsecure());
    expect(await call(plaintext, '/grpc.health.v1.Health/Check', 'unary', undefined)).toBe(grpc.status.UNAVAILABLE);
    plaintext.close();
  });
});

/** The methods the HTTP listener serves (Session, WorkerService and reflection stay on gRPC). */
const HTTP_METHODS = METHODS.filter(({ path, stream }) => stream !== 'bidi' && !path.includes('WorkerService'));

/**
 * Posts an empty message over HTTPS with the client certificate; resolves
 * with the Connect code ("ok" for a 200 unary answer, or what a stream's end
 * says), or the transport error's code.
 */
function httpCall(
  path: string,
  stream: 'unary' | 'server' | 'bidi',
  authorization: string | undefined,
  tls: https.RequestOptions = {},
  raw?: { contentType: string; body: Buffer },
): Promise<string> {
  const headers: Record<string, string> = {
    'content-type': raw?.contentType ?? (stream === 'unary' ? 'application/json' : 'application/connect+json'),
    'connect-timeout-ms': '1500', // a gateway call waits for a worker this test does not have
  };
  if (authorization !== undefined) headers.authorization = authorization;
  const body = raw?.body ?? (stream === 'unary' ? Buffer.from('{}') : Buffer.from([0, 0, 0, 0, 2, 0x7b, 0x7d]));
  return new Promise((resolve) => {
    const request = https.request(
      { host: '127.0.0.1', port: stack.server.httpPort, path, method: 'POST', headers, ca: certs.ca, cert: certs.clientCert, key: certs.clientKey, timeout: 5_000, ...tls },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => {
          const raw = Buffer.concat(chunks);
          if (stream === 'unary') return resolve(response.statusCode === 200 ? 'ok' : (JSON.parse(raw.toString()) as { code: string }).code);
          // A Connect stream ends with an envelope flagged 2 holding {"error": {...}} or {}.
          let at = 0;
          let end: { error?: { code: string } } = {};
          while (at + 5 <= raw.length) {
            const length = raw.readUInt32BE(at + 1);
            if (raw[at] === 2) end = JSON.parse(raw.subarray(at + 5, at + 5 + length).toString()) as typeof end;
            at += 5 + length;
          }
          resolve(end.error?.code ?? 'ok');
        });
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => resolve(`transport: ${error.code ?? error.message}`));
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.end(body);
  });
}

describe('the HTTP listener: the same roles, the same certificates', () => {
  it('answers every method × role as the role table says', async () => {
    const rows: string[] = [];
    for (const { path, stream } of HTTP_METHODS) {
      for (const role of [undefined, 'client', 'worker', 'admin'] as const) {
        const code = await httpCall(path, stream, role === undefined ? undefined : `Bearer ${TOKENS[role]}`);
        rows.push(`${path} ${role ?? 'none'} ${code}`);
        if (path.startsWith('/grpc.health.v1.')) expect(code, `${path} as ${role ?? 'nobody'}`).toBe('ok');
        else if (role === undefined) expect(code, `${path} without a token`).toBe('unauthenticated');
        else if (!rolesFor(path).includes(role)) expect(code, `${path} as ${role}`).toBe('permission_denied');
        else expect(['unauthenticated', 'permission_denied', 'unknown', 'internal'], `${path} as ${role}`).not.toContain(code);
      }
    }
    expect(rows).toHaveLength(HTTP_METHODS.length * 4);
  });

  it('refuses a wrong token, a header that is not Bearer, and callers without the client certificate', async () => {
    expect(await httpCall('/taskwire.v1.TaskService/GetTask', 'unary', 'Bearer not-a-token')).toBe('unauthenticated');
    expect(await httpCall('/taskwire.v1.TaskService/GetTask', 'unary', `Basic ${TOKENS.admin}`)).toBe('unauthenticated');
    // A binary body that is not a message: refused for want of a token first, its bytes never looked at.
    const garbage = { contentType: 'application/proto', body: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) };
    expect(await httpCall('/taskwire.v1.TaskService/GetTask', 'unary', undefined, {}, garbage)).toBe('unauthenticated');
    expect(await httpCall('/taskwire.v1.TaskService/GetTask', 'unary', `Bearer ${TOKENS.client}`, {}, garbage)).toBe('invalid_argument');
    expect(await httpCall('/grpc.health.v1.Health/Check', 'unary', undefined, { cert: undefined, key: undefined })).toMatch(/^transport: /);
    const plain = await fetch(`http://127.0.0.1:${stack.server.httpPort}/grpc.health.v1.Health/Check`, { method: 'POST', body: '{}' }).catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(Error);
  });

  it('speaks HTTP/2 over TLS to connect-es, tokens and roles included', async () => {
    const registry = createRegistry([]);
    const transport = createConnectTransport({
      baseUrl: `https://127.0.0.1:${stack.server.httpPort}`,
      httpVersion: '2',
      nodeOptions: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      interceptors: [(next) => (request) => (request.header.set('authorization', `Bearer ${TOKENS.client}`), next(request))],
    });
    const tasks = createConnectClient(registry.getService('taskwire.v1.TaskService')!, transport) as unknown as Record<string, (r: object) => Promise<any>>;
    const submitted = await tasks.submitTask!({ type: '/demo.v1.DemoService/Echo', input: { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: new Uint8Array() } });
    expect(submitted.task.id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(tasks.listWorkers!({})).rejects.toThrow(/the client role may not call \/taskwire.v1.TaskService\/ListWorkers/);
  });
});
