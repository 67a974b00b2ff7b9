import Database from 'better-sqlite3';
import fc from 'fast-check';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { envelope, postJson, startHttpStack } from '../http/helpers.js';

/**
 * Hostile input on the HTTP listener: generated bodies, content types and
 * paths on every method it serves, then the usual cases one by one
 * (malformed JSON, unknown fields, wrong content types, huge bodies, bad
 * "@type" URLs). Each gets a proper Connect error (never internal or
 * unknown), the server keeps serving, honest work still completes, and the
 * store stays consistent.
 */
const MAX_MESSAGE_BYTES = 1024 * 1024;
const PATHS = [
  ...['SubmitTask', 'SubmitTasks', 'GetTask', 'CancelTask', 'RetryTask', 'ListTasks', 'ListWorkers', 'GetQueueStats', 'RetryTasks', 'CancelTasks', 'PauseQueue', 'ResumeQueue', 'DeleteTask', 'PurgeQueue'].map((m) => `/taskwire.v1.TaskService/${m}`),
  '/demo.v1.DemoService/Echo',
  '/grpc.health.v1.Health/Check',
];
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/proto', 'application/grpc-web+proto', 'application/grpc-web+json', 'application/connect+json', 'text/plain', 'application/xml', ''];
/** Connect error codes a hostile request may earn; "internal" and "unknown" would mean the server broke. */
const ALLOWED = new Set(['ok', 'invalid_argument', 'not_found', 'failed_precondition', 'resource_exhausted', 'deadline_exceeded', 'canceled', 'unimplemented', 'already_exists', 'out_of_range']);

let stack: Awaited<ReturnType<typeof startHttpStack>>;
let inputs = 0;

beforeAll(async () => {
  stack = await startHttpStack({ maxMessageBytes: MAX_MESSAGE_BYTES, maxWatchers: 50 });
  await stack.worker({ workerId: 'honest', concurrency: 8 });
});
afterAll(async () => {
  await stack.stop();
});

/** What the listener said: "ok", a Connect code, or "http <status>" for answers without a Connect body. */
async function outcome(path: string, contentType: string, body: Uint8Array | string): Promise<string> {
  inputs++;
  const response = await fetch(`${stack.baseUrl}${path}`, {
    method: 'POST',
    headers: { ...(contentType === '' ? {} : { 'content-type': contentType }), 'connect-timeout-ms': '500' },
    body,
  });
  const raw = new Uint8Array(await response.arrayBuffer());
  const type = response.headers.get('content-type') ?? '';
  if (type.startsWith('application/grpc-web')) {
    // gRPC-Web carries the status in its trailer (a header when the call fails before any message).
    const status = response.headers.get('grpc-status') ?? /grpc-status: ?(\d+)/.exec(new TextDecoder().decode(raw))?.[1];
    return status === '0' ? 'ok' : `grpc ${status}`;
  }
  if (response.status === 200) return 'ok';
  if (type.startsWith('application/json')) return (JSON.parse(new TextDecoder().decode(raw)) as { code: string }).code;
  return `http ${response.status}`;
}

/** gRPC-Web status numbers of the allowed codes, and the HTTP answers for a request the listener cannot route. */
const GRPC_ALLOWED = new Set(['grpc 3', 'grpc 5', 'grpc 9', 'grpc 8', 'grpc 4', 'grpc 1', 'grpc 12', 'grpc 6', 'grpc 11']);
const HTTP_ALLOWED = new Set(['http 415', 'http 404', 'http 405']);
const proper = (code: string) => ALLOWED.has(code) || GRPC_ALLOWED.has(code) || HTTP_ALLOWED.has(code);

const typeUrl = fc.oneof(
  fc.constantFrom('type.googleapis.com/demo.v1.EchoRequest', 'type.googleapis.com/demo.v1.Nope', 'demo.v1.EchoRequest', '', '/', 'type.googleapis.com/'),
  fc.string({ maxLength: 80 }),
);
const anyJson = fc.oneof(
  fc.record({ '@type': typeUrl, text: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }),
  fc.record({ '@type': typeUrl, value: fc.string() }, { requiredKeys: [] }),
  fc.jsonValue(),
);
const submitJson = fc.record(
  {
    type: fc.constantFrom('/demo.v1.DemoService/Echo', '/nope.v1.Nope/Do', '', 'x'.repeat(3000)),
    input: anyJson,
    options: fc.oneof(fc.jsonValue(), fc.record({ queue: fc.string(), priority: fc.integer(), delay: fc.string(), labels: fc.dictionary(fc.string(), fc.string()) }, { requiredKeys: [] })),
    unknownField: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  submitJson.map((v) => JSON.stringify(v)),
  fc.record({ tasks: fc.array(submitJson, { maxLength: 5 }) }).map((v) => JSON.stringify(v)),
  fc.record({ id: fc.oneof(fc.uuid(), fc.string()), view: fc.oneof(fc.integer(), fc.string()), pageSize: fc.integer(), pageToken: fc.string(), state: fc.oneof(fc.integer(), fc.string()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        filter: fc.oneof(
          fc.jsonValue(),
          fc.record(
            { queue: fc.string(), states: fc.array(fc.oneof(fc.integer(), fc.string())), createdSince: fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), labels: fc.dictionary(fc.string(), fc.string()), errorCode: fc.integer() },
            { requiredKeys: [] },
          ),
        ),
        dryRun: fc.oneof(fc.boolean(), fc.string()),
        limit: fc.oneof(fc.integer(), fc.constant(10_001)),
        reason: fc.string(),
        order: fc.oneof(fc.integer(), fc.string()),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.record({ text: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), payload: fc.string() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }).map((b) => envelope(b)),
);

describe('hostile input over HTTP', () => {
  it('answers generated bodies, content types and paths on every served method with a proper error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...PATHS), fc.constantFrom(...CONTENT_TYPES), body, async (path, contentType, payload) => {
        const code = await outcome(path, contentType, payload);
        expect(proper(code), `${path} ${contentType} → ${code}`).toBe(true);
      }),
      { numRuns: 3_000 },
    );
  }, 240_000);

  it('gives each classic mistake one clear error', async () => {
    const submit = '/taskwire.v1.TaskService/SubmitTask';
    const malformed = await postJson(stack.baseUrl, submit, '{"type": "/demo.v1.DemoService/Echo",');
    expect([malformed.status, malformed.json.code]).toEqual([400, 'invalid_argument']);
    expect(malformed.json.message).toMatch(/JSON/i);

    const unknown = await postJson(stack.baseUrl, submit, { type: '/demo.v1.DemoService/Echo', priorty: 5 });
    expect([unknown.status, unknown.json.code]).toEqual([400, 'invalid_argument']);
    expect(unknown.json.message).toMatch(/priorty/);

    const badType = await postJson(stack.baseUrl, submit, { type: '/demo.v1.DemoService/Echo', input: { '@type': 'type.googleapis.com/acme.v1.Missing', text: 'x' } });
    expect([badType.status, badType.json.code]).toEqual([400, 'invalid_argument']);
    expect(badType.json.message).toMatch(/acme\.v1\.Missing/);

    const wrongInput = await postJson(stack.baseUrl, submit, { type: '/demo.v1.DemoService/Echo', input: { '@type': 'type.googleapis.com/demo.v1.SleepRequest' } });
    expect([wrongInput.status, wrongInput.json.code]).toEqual([400, 'invalid_argument']);
    expect(wrongInput.json.message).toMatch(/demo\.v1\.EchoRequest/);

    const gatewayUnknown = await postJson(stack.baseUrl, '/demo.v1.DemoService/Echo', { txt: 'typo' });
    expect([gatewayUnknown.status, gatewayUnknown.json.code]).toEqual([400, 'invalid_argument']);
    expect(gatewayUnknown.json.message).toMatch(/txt/);

    // Binary that is not a message: INVALID_ARGUMENT with the gRPC server's words, on every protocol.
    const garbage = new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const binary = await fetch(`${stack.baseUrl}${submit}`, { method: 'POST', headers: { 'content-type': 'application/proto' }, body: garbage });
    expect(binary.status).toBe(400);
    expect(await binary.json()).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^the request is not a valid message for \/taskwire.v1.TaskService\/SubmitTask: /) });
    const web = await fetch(`${stack.baseUrl}${submit}`, { method: 'POST', headers: { 'content-type': 'application/grpc-web+proto' }, body: envelope(garbage) });
    const webText = new TextDecoder().decode(await web.arrayBuffer()) + (web.headers.get('grpc-status') ?? '');
    expect(webText).toMatch(/grpc-status: ?3|^3$/m);
    const stream = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/WatchTask`, { method: 'POST', headers: { 'content-type': 'application/connect+proto' }, body: envelope(garbage) });
    expect(new TextDecoder().decode(await stream.arrayBuffer())).toMatch(/"code":"invalid_argument","message":"the request is not a valid message for \/taskwire.v1.TaskService\/WatchTask/);

    const wrongContentType = await fetch(`${stack.baseUrl}${submit}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(wrongContentType.status).toBe(415);
    const get = await fetch(`${stack.baseUrl}${submit}`);
    expect(get.status).toBe(405);
  });

  it('refuses a body past the largest message with resource_exhausted, as gRPC does', async () => {
    const text = 'x'.repeat(MAX_MESSAGE_BYTES + 10);
    const json = await postJson(stack.baseUrl, '/demo.v1.DemoService/Echo', { text });
    expect([json.status, json.json.code]).toEqual([429, 'resource_exhausted']);
    expect(json.json.message).toMatch(/larger than configured readMaxBytes 1048576/);
    const binary = await fetch(`${stack.baseUrl}/demo.v1.DemoService/Echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/proto' },
      body: EchoRequest.encode(EchoRequest.fromPartial({ payload: Buffer.alloc(MAX_MESSAGE_BYTES + 1) })).finish(),
    });
    expect(binary.status).toBe(429);
    // Nothing was queued for either.
    const list = await postJson(stack.baseUrl, '/taskwire.v1.TaskService/ListTasks', { type: '/demo.v1.DemoService/Echo', pageSize: 1000 });
    expect((list.json.tasks ?? []).filter((t: { input?: { text?: string } }) => (t.input?.text?.length ?? 0) > 1000)).toEqual([]);
  });

  it('still runs honest work over HTTP correctly, and the store is consistent', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => postJson(stack.baseUrl, '/demo.v1.DemoService/Echo', { text: `honest ${i}` })));
    answers.forEach((a, i) => expect(a.json.text).toBe(`honest ${i}`));
    const health = await postJson(stack.baseUrl, '/grpc.health.v1.Health/Check', {});
    expect(health.json).toEqual({ status: 'SERVING' });

    const db = new Database(join(stack.dir, 'tasks.db'), { readonly: true });
    const rows = db.prepare('SELECT state, attempt, failures, max_attempts, lease_owner, output FROM tasks').all() as Array<{
      state: number;
      attempt: number;
      failures: number;
      max_attempts: number;
      lease_owner: string | null;
      output: Buffer | null;
    }>;
    db.close();
    for (const row of rows) {
      expect(row.state).toBeGreaterThanOrEqual(TaskState.TASK_STATE_SCHEDULED);
      expect(row.state).toBeLessThanOrEqual(TaskState.TASK_STATE_CANCELLED);
      if (row.state === TaskState.TASK_STATE_RUNNING) expect(row.lease_owner).not.toBeNull();
      if (row.state === TaskState.TASK_STATE_SUCCEEDED) expect(row.output).not.toBeNull();
      expect(row.failures).toBeLessThanOrEqual(row.max_attempts);
      expect(row.failures).toBeLessThanOrEqual(row.attempt);
    }
    console.log(`hostile HTTP input: ${inputs} generated inputs, ${rows.length} tasks audited`);
    expect(inputs).toBeGreaterThanOrEqual(3_000);
  }, 60_000);
});
