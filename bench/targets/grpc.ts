import * as grpc from '@grpc/grpc-js';
import { EchoRequest } from '../../gen/ts/demo/v1/demo.js';
import type { SessionRequest, SessionResponse } from '../../gen/ts/taskwire/v1/task_service.js';
import { Batcher, definitions } from '../baseline/protocol.js';
import { freePort, startScript, type BenchParams, type Producer, type Setup, type Target } from '../lib.js';

const ECHO = '/demo.v1.DemoService/Echo';
const TYPE_URL = 'type.googleapis.com/demo.v1.EchoRequest';

type Batching = 'batched' | 'each';

async function setup(params: BenchParams, batching: Batching): Promise<Setup> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const server = startScript('baseline-server', 'baseline/server.ts', [address, batching]);
  await server.waitFor((l) => l.ready === true);
  const workers = Array.from({ length: params.workers }, (_, i) => startScript(`baseline-worker-${i}`, 'baseline/worker.ts', [address, String(params.slots), batching]));
  await server.waitFor(() => server.lines.filter((l) => l.worker !== undefined).length >= params.workers);
  return {
    children: [server, ...workers],
    info: { address, batching },
    async teardown() {
      await Promise.all(workers.map((w) => w.stop()));
      await server.stop();
    },
  };
}

/** A raw Session stream: submits (with or without want_result) and follows, resolved by task id. */
function openSession(client: grpc.Client, batching: Batching) {
  const call = client.makeBidiStreamRequest(definitions.session.path, definitions.session.requestSerialize, definitions.session.responseDeserialize);
  const byRef = new Map<number, (taskId: string) => void>();
  const byTask = new Map<string, () => void>();
  let nextRef = 1;
  const out = new Batcher<Partial<SessionRequest>>((batch) =>
    call.write({ submits: batch.flatMap((b) => b.submits ?? []), follow: batch.flatMap((b) => b.follow ?? []) }),
    batching === 'each',
  );
  call.on('data', (response: SessionResponse) => {
    for (const ack of response.acks) byRef.get(Number(ack.ref))?.(ack.taskId);
    for (const outcome of response.outcomes) {
      const done = byTask.get(outcome.taskId);
      byTask.delete(outcome.taskId);
      done?.();
    }
  });
  call.on('error', () => undefined);
  return {
    submit(payload: Buffer): Promise<void> {
      const ref = nextRef++;
      return new Promise((resolve) => {
        byRef.set(ref, (taskId) => {
          byRef.delete(ref);
          byTask.set(taskId, resolve);
        });
        out.push({ submits: [{ ref, wantResult: true, request: { type: ECHO, input: { typeUrl: TYPE_URL, value: Buffer.from(EchoRequest.encode({ text: '', payload }).finish()) }, options: undefined } }] });
      });
    },
    follow(taskId: string): Promise<void> {
      return new Promise((resolve) => {
        byTask.set(taskId, resolve);
        out.push({ follow: [taskId] });
      });
    },
    close: () => call.end(),
  };
}

function streamTarget(batching: Batching): Target {
  return {
    setup: (params) => setup(params, batching),
    async producer(_params, info): Promise<Producer> {
      const client = new grpc.Client(String(info.address), grpc.credentials.createInsecure());
      const session = openSession(client, batching);
      return {
        run: (payload) => session.submit(payload),
        async close() {
          session.close();
          client.close();
        },
      };
    },
  };
}

/** The floor the Session is held to: the same messages, batched per turn as taskwire batches them. */
export const stream = streamTarget('batched');
/** The same floor with one stream message per task (no batching anywhere). */
export const streamEach = streamTarget('each');

export const unary: Target = {
  setup: (params) => setup(params, 'batched'),
  async producer(_params, info): Promise<Producer> {
    const client = new grpc.Client(String(info.address), grpc.credentials.createInsecure());
    const session = openSession(client, 'batched');
    const d = definitions.submitTask;
    return {
      async run(payload) {
        const response = await new Promise<{ task?: { id: string } }>((resolve, reject) =>
          client.makeUnaryRequest(d.path, d.requestSerialize, d.responseDeserialize, {
            type: ECHO,
            input: { typeUrl: TYPE_URL, value: Buffer.from(EchoRequest.encode({ text: '', payload }).finish()) },
            options: undefined,
          }, (error, value) => (error ? reject(error) : resolve(value as { task?: { id: string } }))),
        );
        await session.follow(response.task!.id);
      },
      async close() {
        session.close();
        client.close();
      },
    };
  },
};
