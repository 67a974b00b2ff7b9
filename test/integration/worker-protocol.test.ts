import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, EchoResponse, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import {
  ConnectRequest,
  ConnectResponse,
  ProtocolVersion,
  WorkerServiceDefinition,
  type Hello,
} from '../../gen/ts/taskwire/v1/worker_service.js';
import { pack } from '../../src/client/index.js';
import { Code } from '../../src/errors.js';
import { createRpcChannel, createRpcClient, Outbox } from '../../src/rpc/index.js';
import { tokenAuth } from '../../src/server/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const S = TaskState;

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
const channels: grpc.Channel[] = [];
const streams: Array<() => void> = [];
afterEach(async () => {
  for (const end of streams.splice(0)) end();
  for (const channel of channels.splice(0)) channel.close();
  await stack?.stop();
  stack = undefined;
});

const hello = (overrides: Partial<Hello> = {}): Hello => ({
  workerId: 'raw',
  taskTypes: [ECHO, SLEEP],
  slots: 4,
  labels: {},
  version: 'test',
  protocol: ProtocolVersion.PROTOCOL_VERSION_1,
  resume: [],
  ...overrides,
});

/** A worker speaking the protocol by hand: what an implementer in another language sends. */
function rawWorker(address: string, first: Partial<ConnectRequest> | undefined, token?: string) {
  const channel = createRpcChannel(address);
  channels.push(channel as unknown as grpc.Channel);
  const rpc = createRpcClient(WorkerServiceDefinition, channel, token === undefined ? {} : { token });
  const out = new Outbox<Partial<ConnectRequest>>((messages) => messages.at(-1)!);
  if (first !== undefined) out.push(first);
  streams.push(() => out.end());
  const responses = rpc.connect(out)[Symbol.asyncIterator]();
  return {
    send: (message: Partial<ConnectRequest>) => out.push(message),
    /** The next response, with a bound. */
    async next(): Promise<ConnectResponse> {
      const result = await responses.next();
      if (result.done) throw new Error('the stream ended');
      return result.value;
    },
    /** Reads until a response has `pick` true; returns it. */
    async until(pick: (r: ConnectResponse) => boolean): Promise<ConnectResponse> {
      for (let i = 0; i < 50; i++) {
        const response = await this.next();
        if (pick(response)) return response;
      }
      throw new Error('no such response within 50 messages');
    },
    /** How the stream ended: resolves with the error it ended with. */
    async ended(): Promise<unknown> {
      try {
        for (let i = 0; i < 50; i++) if ((await responses.next()).done) return undefined;
      } catch (error) {
        return error;
      }
      throw new Error('the stream did not end within 50 messages');
    },
    end: () => out.end(),
  };
}

/** A task running on a raw worker "holder": its id and attempt. */
async function runningOnHolder(address: string) {
  const client = stack!.client();
  const holder = rawWorker(address, { hello: hello({ workerId: 'holder' }) });
  expect((await holder.next()).welcome).toBeDefined();
  const { id } = await client.submit(ECHO, pack(EchoRequest, { text: 'mine' }));
  const assignment = (await holder.until((r) => r.assignments.length > 0)).assignments[0]!;
  expect(assignment.taskId).toBe(id);
  return { client, holder, id, attempt: assignment.attempt };
}

describe('only the lease holder answers for an attempt', () => {
  it('refuses Complete, Fail and Release from another session, and the holder still finishes the task', async () => {
    stack = await startStack();
    const { client, holder, id, attempt } = await runningOnHolder(stack.address);

    const intruder = rawWorker(stack.address, { hello: hello({ workerId: 'intruder' }) });
    expect((await intruder.next()).welcome).toBeDefined();
    intruder.send({ completes: [{ taskId: id, attempt, output: pack(EchoResponse, { text: 'forged' }) }] });
    const first = await intruder.until((r) => r.rejections.length > 0);
    expect(first.rejections).toEqual([{ taskId: id, attempt, reason: expect.stringMatching(/complete refused: this session does not hold the lease/) }]);
    intruder.send({ fails: [{ taskId: id, attempt, message: 'forged', code: Code.INTERNAL, retryable: false }] });
    expect((await intruder.until((r) => r.rejections.length > 0)).rejections[0]!.reason).toMatch(/^fail refused/);
    intruder.send({ releases: [{ taskId: id, attempt }] });
    expect((await intruder.until((r) => r.rejections.length > 0)).rejections[0]!.reason).toMatch(/^release refused/);
    expect(stack.server.counters.refusedResults).toBe(3);

    const task = await client.get(id);
    expect([task.state, task.attempt, task.workerId]).toEqual([S.TASK_STATE_RUNNING, attempt, 'holder']);

    holder.send({ completes: [{ taskId: id, attempt, output: pack(EchoResponse, { text: 'genuine' }) }] });
    const outcome = await client.result(id);
    expect(outcome.state).toBe(S.TASK_STATE_SUCCEEDED);
    expect(EchoResponse.decode(outcome.output!.value).text).toBe('genuine');
  });

  it('lets only the same worker id take over an attempt with Hello.resume', async () => {
    stack = await startStack();
    const { client, id, attempt } = await runningOnHolder(stack.address);

    const impostor = rawWorker(stack.address, { hello: hello({ workerId: 'impostor', resume: [{ taskId: id, attempt }] }) });
    const welcome = (await impostor.next()).welcome!;
    expect(welcome.resumed).toEqual([]);
    // Told to stop what it claimed to run; the lease stays with the holder.
    const cancel = (await impostor.until((r) => r.cancels.length > 0)).cancels[0]!;
    expect(cancel).toMatchObject({ taskId: id, attempt, reason: expect.stringMatching(/not leased to this worker/) });
    expect((await client.get(id)).workerId).toBe('holder');
    impostor.send({ completes: [{ taskId: id, attempt, output: pack(EchoResponse, { text: 'forged' }) }] });
    expect((await impostor.until((r) => r.rejections.length > 0)).rejections[0]!.taskId).toBe(id);

    // The same worker id (a reconnect after a lost stream) does take it over, and finishes it.
    const again = rawWorker(stack.address, { hello: hello({ workerId: 'holder', resume: [{ taskId: id, attempt }] }) });
    expect((await again.next()).welcome!.resumed).toEqual([{ taskId: id, attempt }]);
    again.send({ completes: [{ taskId: id, attempt, output: pack(EchoResponse, { text: 'resumed' }) }] });
    expect(EchoResponse.decode((await client.result(id)).output!.value).text).toBe('resumed');
  });

  it('with tokens on, a worker presenting another token cannot resume a worker id it copied', async () => {
    stack = await startStack({
      auth: tokenAuth([
        { role: 'worker', token: 'token-a', name: 'fleet-a' },
        { role: 'worker', token: 'token-b', name: 'fleet-b' },
        { role: 'client', token: 'client-token' },
        { role: 'admin', token: 'admin-token' },
      ]),
    });
    const { createClient } = await import('../../src/client/index.js');
    const client = createClient({ server: stack.address, token: 'client-token' });
    const holder = rawWorker(stack.address, { hello: hello({ workerId: 'w1' }) }, 'token-a');
    expect((await holder.next()).welcome).toBeDefined();
    const { id } = await client.submit(ECHO, pack(EchoRequest, { text: 'x' }));
    const { attempt } = (await holder.until((r) => r.assignments.length > 0)).assignments[0]!;

    const other = rawWorker(stack.address, { hello: hello({ workerId: 'w1', resume: [{ taskId: id, attempt }] }) }, 'token-b');
    expect((await other.next()).welcome!.resumed).toEqual([]);
    const same = rawWorker(stack.address, { hello: hello({ workerId: 'w1', resume: [{ taskId: id, attempt }] }) }, 'token-a');
    expect((await same.next()).welcome!.resumed).toEqual([{ taskId: id, attempt }]);
    const admin = createClient({ server: stack.address, token: 'admin-token' });
    expect((await admin.get(id)).workerId).toBe('fleet-a/w1');
    client.close();
    admin.close();
  });
});

describe("a result's output is checked against its task type", () => {
  const cases: Array<[string, ConnectRequest['completes'][number]['output'], RegExp]> = [
    ['another message', pack(EchoRequest, { text: 'wrong type' }), /has type "type.googleapis.com\/demo.v1.EchoRequest" but .* returns "type.googleapis.com\/demo.v1.EchoResponse"/],
    ['no output', undefined, /without an output/],
    ['an unknown type', { typeUrl: 'type.googleapis.com/nope.Nothing', value: Buffer.alloc(0) }, /has type "type.googleapis.com\/nope.Nothing"/],
    ['undecodable bytes', { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: Buffer.from([0x0a, 0x05, 0x61]) }, /is not a valid .*EchoResponse/],
  ];
  for (const [what, output, message] of cases) {
    it(`fails the attempt for good on ${what}, and the session goes on`, async () => {
      stack = await startStack();
      const { client, holder, id, attempt } = await runningOnHolder(stack.address);
      // In the same message, a valid result for a second task: a malformed item stands alone.
      const second = await client.submit(ECHO, pack(EchoRequest, { text: 'second' }));
      const secondAttempt = (await holder.until((r) => r.assignments.length > 0)).assignments[0]!;
      expect(secondAttempt.taskId).toBe(second.id);
      holder.send({
        completes: [
          { taskId: id, attempt, output },
          { taskId: second.id, attempt: secondAttempt.attempt, output: pack(EchoResponse, { text: 'fine' }) },
        ],
      });
      const outcome = await client.result(id);
      expect(outcome.state).toBe(S.TASK_STATE_FAILED);
      expect(outcome.error?.message).toMatch(message);
      expect((await client.get(id)).errors.at(-1)).toMatchObject({ code: Code.INTERNAL, retryable: false });
      expect((await client.result(second.id)).state).toBe(S.TASK_STATE_SUCCEEDED);
      // Still the same session: it gets more work.
      const third = await client.submit(ECHO, pack(EchoRequest, { text: 'third' }));
      expect((await holder.until((r) => r.assignments.length > 0)).assignments[0]!.taskId).toBe(third.id);
    });
  }
});

describe('Hello is checked', () => {
  const refused: Array<[string, Partial<Hello>, RegExp]> = [
    ['a task type the server does not serve', { taskTypes: [ECHO, '/acme.v1.Nope/Run'] }, /does not serve "\/acme.v1.Nope\/Run"; it serves/],
    ['a task type named twice', { taskTypes: [ECHO, ECHO] }, /names "\/demo.v1.DemoService\/Echo" twice/],
    ['a 10,000-character worker id', { workerId: 'w'.repeat(10_000) }, /worker_id is 10000 characters long; the most allowed is 256/],
    ['a worker id with control characters', { workerId: 'bad\u0000id' }, /worker_id must be valid UTF-8 without control characters/],
    ['no slots', { slots: 0 }, /slots must be in 1\.\.10000; got 0/],
  ];
  for (const [what, overrides, message] of refused) {
    // A type this server does not serve is its set-up, not the worker's fault: FAILED_PRECONDITION.
    const [code, name] = what.includes('does not serve') ? [Code.FAILED_PRECONDITION, 'FAILED_PRECONDITION'] : [Code.INVALID_ARGUMENT, 'INVALID_ARGUMENT'];
    it(`refuses ${what} with ${name}`, async () => {
      stack = await startStack();
      const error = await rawWorker(stack.address, { hello: hello(overrides) }).ended();
      expect(error).toMatchObject({ code, details: expect.stringMatching(message) });
    });
  }

  it('refuses a worker id that is not valid UTF-8', async () => {
    stack = await startStack();
    const bytes = Buffer.from(ConnectRequest.encode(ConnectRequest.fromPartial({ hello: hello({ workerId: 'AB' }) })).finish());
    const at = bytes.indexOf(Buffer.from('AB'));
    bytes[at] = 0xc3; // a lead byte followed by a non-continuation byte
    bytes[at + 1] = 0x28;
    const client = new grpc.Client(stack.address, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest('/taskwire.v1.WorkerService/Connect', (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata(), { deadline: Date.now() + 5_000 });
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    call.write(bytes);
    expect(await status).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/valid UTF-8/) });
    client.close();
  });

  it('ends the stream on a second Hello', async () => {
    stack = await startStack();
    const worker = rawWorker(stack.address, { hello: hello() });
    expect((await worker.next()).welcome).toBeDefined();
    worker.send({ hello: hello() });
    expect(await worker.ended()).toMatchObject({ code: Code.INVALID_ARGUMENT, details: expect.stringMatching(/hello may be sent only once/) });
  });

  it('closes a Connect stream that never says Hello', async () => {
    stack = await startStack({ helloTimeoutMs: 200 });
    const worker = rawWorker(stack.address, undefined);
    expect(await worker.ended()).toMatchObject({ code: Code.DEADLINE_EXCEEDED, details: expect.stringMatching(/no hello within 200 ms/) });
  });
});

describe('progress', () => {
  it('clamps an out-of-range percent, infinities included, and drops NaN', async () => {
    stack = await startStack();
    const { client, holder, id, attempt } = await runningOnHolder(stack.address);
    const seen: number[] = [];
    const watching = (async () => {
      for await (const event of client.watch(id)) {
        if (event?.$case === 'progress') seen.push(event.value.percent);
        if (seen.length === 3) return;
      }
    })();
    // Progress is written at most every 100 ms per session; each report waits for the last one to be seen.
    for (const [percent, expected] of [[Number.POSITIVE_INFINITY, 100], [Number.NaN, undefined], [-5, 0], [150, 100]] as const) {
      holder.send({ progress: [{ taskId: id, attempt, percent, message: 'm'.repeat(2_000) }] });
      if (expected === undefined) continue;
      await waitFor(async () => seen.at(-1) === expected && seen.length > 0, { what: `progress ${expected}` });
    }
    await watching;
    expect(seen).toEqual([100, 0, 100]);
    expect((await client.get(id)).progressMessage).toHaveLength(1024);
  });
});

describe('many workers', () => {
  it('connects more than 10 workers without a MaxListenersExceededWarning', async () => {
    stack = await startStack();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 12; i++) await stack.worker({ workerId: `w${i}` });
      const client = stack.client();
      await waitFor(async () => (await client.workers()).length === 12, { what: '12 workers' });
      await client.run(SLEEP, pack(SleepRequest, { durationMs: 1 }));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });
});
