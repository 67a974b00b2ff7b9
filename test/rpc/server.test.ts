import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { ClientError, Status, type Channel } from 'nice-grpc';
import { HealthDefinition, HealthCheckResponse_ServingStatus } from 'nice-grpc-server-health/lib/proto/grpc/health/v1/health.js';
import { ServerReflectionService } from 'nice-grpc-server-reflection';
import { ServerReflectionRequest } from 'nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServiceDefinition, EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { Code, TaskwireError } from '../../src/errors.js';
import { createRpcChannel, createRpcClient, createRpcServer, type RpcServer } from '../../src/rpc/index.js';
import { deferred, waitFor } from '../helpers/wait.js';

interface Harness {
  server: RpcServer;
  channel: Channel;
  address: string;
  logs: Array<Record<string, unknown>>;
  /** Resolves with the handler's observations of the Sleep call. */
  sleeps: Array<{ deadline: Date | undefined; aborted: Promise<void> }>;
  releaseSleep: () => void;
}

const open: Harness[] = [];

afterEach(async () => {
  for (const h of open.splice(0)) {
    h.channel.close();
    await h.server.shutdown();
  }
});

async function start(options: { shutdownGraceMs?: number; drainDelayMs?: number; maxMessageBytes?: number; onDrain?: () => void } = {}) {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const server = createRpcServer({
    logger: pino({ level: 'info' }, sink),
    descriptorSet: 'gen/descriptor.binpb',
    ...options,
  });
  const sleeps: Harness['sleeps'] = [];
  let release = deferred();
  server.add(DemoServiceDefinition, {
    async echo(request) {
      return { text: request.text, payload: request.payload };
    },
    async sleep(request, context) {
      const aborted = deferred();
      context.signal.addEventListener('abort', () => aborted.resolve(), { once: true });
      sleeps.push({ deadline: context.deadline, aborted: aborted.promise });
      // A handler that ignores its signal, to show shutdown can still force it.
      if (request.steps === 0) await release.promise;
      else await Promise.race([aborted.promise, release.promise]);
      return { sleptMs: request.durationMs };
    },
    async fail(request) {
      if (request.code === 0) throw new Error(`secret internals: ${request.message}`);
      throw new TaskwireError(request.code as Code, request.message);
    },
  });
  const port = await server.listen('127.0.0.1:0');
  const address = `127.0.0.1:${port}`;
  const channel = createRpcChannel(address);
  const h: Harness = {
    server,
    channel,
    address,
    logs,
    sleeps,
    releaseSleep: () => {
      release.resolve();
      release = deferred();
    },
  };
  open.push(h);
  return h;
}

describe('RPC server', () => {
  it('answers health SERVING, then NOT_SERVING once shutdown begins, and serves calls through the drain delay', async () => {
    const drained = deferred();
    let drainStarted = false;
    const h = await start({
      drainDelayMs: 1_000,
      onDrain: () => {
        drainStarted = true;
        drained.resolve();
      },
    });
    const health = createRpcClient(HealthDefinition, h.channel);
    expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: 'demo.v1.DemoService' })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );

    const stopped = h.server.shutdown();
    const status = await waitFor(
      async () => {
        const { status } = await health.check({ service: 'demo.v1.DemoService' });
        return status === HealthCheckResponse_ServingStatus.NOT_SERVING && status;
      },
      { what: 'NOT_SERVING' },
    );
    expect(status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    // Load balancers are still catching up: calls are served, draining has not begun.
    const demo = createRpcClient(DemoServiceDefinition, h.channel);
    expect(await demo.echo({ text: 'still serving' })).toMatchObject({ text: 'still serving' });
    expect(drainStarted).toBe(false);
    await drained.promise;
    expect(await stopped).toEqual({ forced: false });
  });

  it('lists its services through reflection', async () => {
    const h = await start();
    const reflection = createRpcClient(ServerReflectionService, h.channel);
    async function* requests() {
      yield new ServerReflectionRequest().setListServices('*');
    }
    const names: string[] = [];
    for await (const response of reflection.serverReflectionInfo(requests())) {
      for (const service of response.getListServicesResponse()?.getServiceList() ?? []) names.push(service.getName());
    }
    expect(names).toEqual(expect.arrayContaining(['demo.v1.DemoService', 'grpc.health.v1.Health']));
  });

  it('logs one line per call with method, status code, duration and peer', async () => {
    const h = await start();
    const demo = createRpcClient(DemoServiceDefinition, h.channel);
    await demo.echo({ text: 'a' });
    await demo.echo({ text: 'b' });
    await expect(demo.fail({ message: 'nope', code: Code.NOT_FOUND })).rejects.toThrow();

    const calls = await waitFor(() => {
      const lines = h.logs.filter((line) => line.msg === 'call' || line.msg === 'call failed');
      return lines.length === 3 && lines;
    });
    expect(calls.map((line) => [line.method, line.code])).toEqual([
      ['/demo.v1.DemoService/Echo', 'OK'],
      ['/demo.v1.DemoService/Echo', 'OK'],
      ['/demo.v1.DemoService/Fail', 'NOT_FOUND'],
    ]);
    for (const line of calls) {
      expect(line.durationMs).toBeTypeOf('number');
      expect(String(line.peer)).toContain('127.0.0.1');
    }
  });

  it('sends a handler error to the client with its code and message, and hides unexpected ones', async () => {
    const h = await start();
    const demo = createRpcClient(DemoServiceDefinition, h.channel);

    const known = await demo.fail({ message: 'width must be positive', code: Code.INVALID_ARGUMENT }).catch((e) => e);
    expect(known).toBeInstanceOf(ClientError);
    expect(known.code).toBe(Status.INVALID_ARGUMENT);
    expect(known.details).toBe('width must be positive');

    const unexpected = await demo.fail({ message: 'db password', code: 0 }).catch((e) => e);
    expect(unexpected.code).toBe(Status.INTERNAL);
    expect(unexpected.details).not.toContain('db password');
    expect(unexpected.details).not.toContain('at ');
  });

  it('shows the client deadline to the handler and aborts it when the deadline passes', async () => {
    const h = await start();
    const demo = createRpcClient(DemoServiceDefinition, h.channel);
    const before = Date.now();
    const result = demo.sleep({ durationMs: 60_000, steps: 1 }, { deadline: 300 }).catch((e) => e);

    const seen = await waitFor(() => h.sleeps[0]);
    expect(seen.deadline).toBeInstanceOf(Date);
    const remaining = seen.deadline!.getTime() - before;
    expect(remaining).toBeGreaterThan(150);
    expect(remaining).toBeLessThanOrEqual(400);

    await seen.aborted; // the handler's signal fires
    const error = await result;
    expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
    h.releaseSleep();
  });

  it('lets an in-flight call finish during shutdown', async () => {
    const h = await start({ shutdownGraceMs: 5_000 });
    const demo = createRpcClient(DemoServiceDefinition, h.channel);
    const call = demo.sleep({ durationMs: 1, steps: 0 });
    await waitFor(() => h.sleeps[0]);

    const stopped = h.server.shutdown();
    await waitFor(() => h.server.draining.aborted);
    h.releaseSleep();
    expect(await call).toEqual({ sleptMs: 1 });
    expect(await stopped).toEqual({ forced: false });
  });

  it('forces a stuck call after the grace period', async () => {
    const h = await start({ shutdownGraceMs: 300 });
    const demo = createRpcClient(DemoServiceDefinition, h.channel);
    const call = demo.sleep({ durationMs: 1, steps: 0 }).catch((e) => e);
    await waitFor(() => h.sleeps[0]);

    const started = Date.now();
    expect(await h.server.shutdown()).toEqual({ forced: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const error = await call;
    expect(error).toBeInstanceOf(ClientError);
    expect([Status.UNAVAILABLE, Status.CANCELLED, Status.INTERNAL]).toContain(error.code);
    h.releaseSleep();
  });

  describe('bad input', () => {
    function rawCall(address: string, path: string, bytes: Buffer) {
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      return new Promise<grpc.ServiceError | null>((resolve) => {
        client.makeUnaryRequest(
          path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          bytes,
          (error) => {
            client.close();
            resolve(error);
          },
        );
      });
    }

    async function stillServes(h: Harness) {
      const demo = createRpcClient(DemoServiceDefinition, h.channel);
      expect(await demo.echo({ text: 'still here' })).toEqual(expect.objectContaining({ text: 'still here' }));
    }

    it('rejects bytes that are not a valid message', async () => {
      const h = await start();
      const error = await rawCall(h.address, '/demo.v1.DemoService/Echo', Buffer.from([0x0f, 0xff, 0xff, 0xff]));
      // Not INTERNAL (grpc-js's own answer): the decoding layer says what it is.
      expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/not a valid message for \/demo.v1.DemoService\/Echo/) });
      await stillServes(h);
    });

    it('rejects an oversized message with RESOURCE_EXHAUSTED', async () => {
      const h = await start({ maxMessageBytes: 64 * 1024 });
      const big = Buffer.from(EchoRequest.encode({ text: '', payload: Buffer.alloc(100 * 1024) }).finish());
      const error = await rawCall(h.address, '/demo.v1.DemoService/Echo', big);
      expect(error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      await stillServes(h);
    });

    it('rejects an unknown method with UNIMPLEMENTED', async () => {
      const h = await start();
      const error = await rawCall(h.address, '/demo.v1.DemoService/Nope', Buffer.alloc(0));
      expect(error?.code).toBe(grpc.status.UNIMPLEMENTED);
      await stillServes(h);
    });
  });
});
