/**
 * The stack's floor: an in-memory dispatcher on raw @grpc/grpc-js, speaking
 * the same Session/SubmitTask/Connect messages as taskwire, with credits and
 * batching, and no durability, leases or retries. A second argument `each`
 * writes one message per task instead of batching a turn's messages.
 */
import * as grpc from '@grpc/grpc-js';
import type { Any } from '../../gen/ts/google/protobuf/any.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { SubmitTaskResponse, type SessionAck, type SessionResponse, type TaskOutcome } from '../../gen/ts/taskwire/v1/task_service.js';
import type { Assignment, ConnectRequest, ConnectResponse } from '../../gen/ts/taskwire/v1/worker_service.js';
import { Batcher, definitions } from './protocol.js';

interface Task {
  id: string;
  input: Any;
  notify?: (outcome: TaskOutcome) => void;
}

interface WorkerStream {
  credit: number;
  send: Batcher<Assignment>;
}

const queue: Task[] = [];
const running = new Map<string, Task>();
const followers = new Map<string, (outcome: TaskOutcome) => void>();
/** Outcomes nobody followed yet (a unary submit whose follow has not arrived). */
const unclaimed = new Map<string, TaskOutcome>();
const workers: WorkerStream[] = [];
const each = process.argv[3] === 'each';
let nextId = 1;
let rr = 0;
let dispatchScheduled = false;

function dispatch(): void {
  if (dispatchScheduled) return;
  dispatchScheduled = true;
  setImmediate(() => {
    dispatchScheduled = false;
    for (let i = 0; i < workers.length && queue.length > 0; i++) {
      const worker = workers[(rr + i) % workers.length]!;
      while (worker.credit > 0 && queue.length > 0) {
        const task = queue.shift()!;
        worker.credit--;
        running.set(task.id, task);
        worker.send.push({ taskId: task.id, attempt: 1, type: '/demo.v1.DemoService/Echo', input: task.input, deadline: undefined, metadata: {}, queue: 'default', maxAttempts: 1 });
      }
    }
    rr++;
  });
}

function submit(input: Any | undefined, notify?: (outcome: TaskOutcome) => void): string {
  const id = String(nextId++);
  queue.push({ id, input: input ?? { typeUrl: '', value: Buffer.alloc(0) }, ...(notify ? { notify } : {}) });
  dispatch();
  return id;
}

const server = new grpc.Server();
server.addService(definitions, {
  session(call: grpc.ServerDuplexStream<any, SessionResponse>) {
    const out = new Batcher<{ ack?: SessionAck; outcome?: TaskOutcome }>((batch) =>
      call.write({ acks: batch.flatMap((b) => (b.ack ? [b.ack] : [])), outcomes: batch.flatMap((b) => (b.outcome ? [b.outcome] : [])) }),
      each,
    );
    call.on('data', (request: { submits: Array<{ ref: number; request?: { input?: Any }; wantResult: boolean }>; follow: string[] }) => {
      for (const id of request.follow) {
        const done = unclaimed.get(id);
        unclaimed.delete(id);
        if (done) out.push({ outcome: done });
        else followers.set(id, (outcome) => out.push({ outcome }));
      }
      for (const s of request.submits) {
        const id = submit(s.request?.input, s.wantResult ? (outcome) => out.push({ outcome }) : undefined);
        out.push({ ack: { ref: s.ref, taskId: id, existing: false, error: undefined } });
      }
    });
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  },
  submitTask(call: grpc.ServerUnaryCall<{ input?: Any }, unknown>, callback: grpc.sendUnaryData<unknown>) {
    const id = submit(call.request.input);
    callback(null, SubmitTaskResponse.fromPartial({ task: { id }, existing: false }));
  },
  connect(call: grpc.ServerDuplexStream<ConnectRequest, ConnectResponse>) {
    const worker: WorkerStream = {
      credit: 0,
      send: new Batcher((assignments) => call.write({ assignments, cancels: [], rejected: [], acknowledged: [], rejections: [] }), each),
    };
    call.on('data', (request: ConnectRequest) => {
      if (request.hello) {
        worker.credit = request.hello.slots;
        workers.push(worker);
        console.log(JSON.stringify({ worker: request.hello.workerId }));
        call.write({ welcome: { sessionId: 'baseline', resumed: [] }, assignments: [], cancels: [], rejected: [], acknowledged: [], rejections: [] });
      }
      for (const complete of request.completes) {
        const task = running.get(complete.taskId);
        running.delete(complete.taskId);
        const outcome: TaskOutcome = { taskId: complete.taskId, state: TaskState.TASK_STATE_SUCCEEDED, output: complete.output, error: undefined, attempt: 1 };
        if (task?.notify) task.notify(outcome);
        else {
          const follower = followers.get(complete.taskId);
          followers.delete(complete.taskId);
          if (follower) follower(outcome);
          else unclaimed.set(complete.taskId, outcome);
        }
      }
      worker.credit += request.credit;
      if (request.credit > 0) dispatch();
    });
    call.on('end', () => {
      workers.splice(workers.indexOf(worker), 1);
      call.end();
    });
    call.on('error', () => undefined);
  },
});

const address = process.argv[2] ?? '127.0.0.1:0';
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(JSON.stringify({ ready: true, port }));
});
process.on('SIGTERM', () => {
  server.forceShutdown();
  process.exit(0);
});
