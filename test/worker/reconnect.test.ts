import { createServer, ServerError, Status } from 'nice-grpc';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import { WorkerServiceDefinition, type ConnectRequest, type ConnectResponse } from '../../gen/ts/taskwire/v1/worker_service.js';
import { DemoServiceDefinition, demoHandlers } from '../../src/demo/handlers.js';
import { createWorker, type Worker } from '../../src/worker/index.js';
import { deferred } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';
const welcome = (sessionId: string, resumed: ConnectResponse['acknowledged']): Partial<ConnectResponse> => ({
  welcome: { sessionId, heartbeatInterval: { seconds: 10, nanos: 0 }, lease: { seconds: 30, nanos: 0 }, resumed },
});

/** Reads the stream until a message matches, collecting the credit granted on the way. */
async function readUntil(requests: AsyncIterator<ConnectRequest>, match: (request: ConnectRequest) => boolean) {
  let credit = 0;
  for (;;) {
    const next = await requests.next();
    if (next.done) throw new Error('the worker ended its stream');
    credit += next.value.credit;
    if (match(next.value)) return { request: next.value, credit };
  }
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

describe('worker reconnect', () => {
  it('gives back the slot of each result it sends again on a new session', async () => {
    // A scripted server: the first session assigns one task, takes its result without
    // acknowledging it, and fails; the second resumes that attempt, like a server that
    // restarted, and records what the worker grants with the result sent again.
    const second = deferred<{ resume: ConnectRequest['hello']; credit: number; resent: ConnectRequest }>();
    let sessions = 0;
    const server = createServer();
    server.add(WorkerServiceDefinition, {
      async *connect(requests) {
        const stream = requests[Symbol.asyncIterator]();
        const { request: hello } = await readUntil(stream, (r) => r.hello !== undefined);
        sessions++;
        if (sessions === 1) {
          yield welcome('s1', []);
          yield {
            assignments: [
              {
                taskId: 't1',
                attempt: 1,
                type: ECHO,
                input: { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: Buffer.from(EchoRequest.encode(EchoRequest.fromPartial({ text: 'hi' })).finish()) },
                metadata: {},
                queue: 'default',
                maxAttempts: 3,
              },
            ],
          };
          await readUntil(stream, (r) => r.completes.length > 0);
          throw new ServerError(Status.UNAVAILABLE, 'the server went away');
        }
        const resumed = hello.hello!.resume;
        yield welcome('s2', resumed);
        const { request: resent, credit } = await readUntil(stream, (r) => r.completes.length > 0);
        second.resolve({ resume: hello.hello, credit, resent });
        await readUntil(stream, () => false).catch(() => undefined);
      },
    });
    const port = await server.listen('127.0.0.1:0');
    cleanup.push(() => server.shutdown());

    const worker: Worker = createWorker({
      server: `127.0.0.1:${port}`,
      concurrency: 1,
      logger: pino({ level: 'silent' }),
      reconnectMinMs: 10,
      shutdownGraceMs: 100,
    });
    worker.implement(DemoServiceDefinition, demoHandlers('w'));
    await worker.start();
    cleanup.push(() => worker.stop());

    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no second session with the result sent again')), 10_000));
    const { resume, credit, resent } = await Promise.race([second.promise, timeout]);
    expect(resume?.resume).toEqual([{ taskId: 't1', attempt: 1 }]);
    expect(resent.completes.map((c) => [c.taskId, c.attempt])).toEqual([['t1', 1]]);
    // The second session counted the resumed attempt as holding the worker's only slot: without
    // this credit the worker would never be given work again.
    expect(credit).toBe(1);
  });
});
