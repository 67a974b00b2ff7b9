import * as grpc from '@grpc/grpc-js';
import { SessionRequest, SessionResponse, SubmitTaskRequest, SubmitTaskResponse } from '../../gen/ts/taskwire/v1/task_service.js';
import { ConnectRequest, ConnectResponse } from '../../gen/ts/taskwire/v1/worker_service.js';

/** Raw grpc-js method definitions for the baseline: the same paths and messages as taskwire, nothing else. */
function method<Req, Res>(
  path: string,
  requestStream: boolean,
  responseStream: boolean,
  req: { encode(m: Req): { finish(): Uint8Array }; decode(b: Uint8Array): Req },
  res: { encode(m: Res): { finish(): Uint8Array }; decode(b: Uint8Array): Res },
): grpc.MethodDefinition<Req, Res> {
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: (m: Req) => Buffer.from(req.encode(m).finish()),
    requestDeserialize: (b: Buffer) => req.decode(b),
    responseSerialize: (m: Res) => Buffer.from(res.encode(m).finish()),
    responseDeserialize: (b: Buffer) => res.decode(b),
  };
}

export const definitions = {
  session: method('/taskwire.v1.TaskService/Session', true, true, SessionRequest, SessionResponse),
  submitTask: method('/taskwire.v1.TaskService/SubmitTask', false, false, SubmitTaskRequest, SubmitTaskResponse),
  connect: method('/taskwire.v1.WorkerService/Connect', true, true, ConnectRequest, ConnectResponse),
};

/**
 * Collects messages for one stream during a turn of the event loop and
 * writes them as one; with `each`, writes every message on its own (the
 * one-message-per-task floor).
 */
export class Batcher<T> {
  #pending: T[] = [];
  #scheduled = false;

  constructor(
    private readonly write: (batch: T[]) => void,
    private readonly each = false,
  ) {}

  push(item: T): void {
    if (this.each) {
      this.write([item]);
      return;
    }
    this.#pending.push(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        const batch = this.#pending;
        this.#pending = [];
        if (batch.length > 0) this.write(batch);
      });
    }
  }
}
