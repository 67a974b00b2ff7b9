import { ClientError, createServer, ServerError, Status, type Server } from 'nice-grpc';
import {
  WorkerServiceDefinition,
  type ConnectRequest,
  type ConnectResponse,
} from '../gen/ts/taskwire/v1/worker_service.js';
import { createRpcChannel, createRpcClient } from '../src/rpc/index.js';

/** One message between the worker and the server, as the proxy saw it. */
export type Entry =
  | { readonly at: number; readonly session: number; readonly from: 'worker'; readonly message: ConnectRequest }
  | { readonly at: number; readonly session: number; readonly from: 'server'; readonly message: ConnectResponse }
  | { readonly at: number; readonly session: number; readonly from: 'end'; readonly code: Status; readonly details: string };

export interface RecordingProxy {
  readonly address: string;
  /** Every message of every session, in the order the proxy saw them. */
  readonly transcript: readonly Entry[];
  /** Resolves when an entry matching `match` has been recorded (past or future), or rejects after `timeoutMs`. */
  waitFor(match: (entry: Entry) => boolean, timeoutMs: number, what: string): Promise<Entry>;
  close(): Promise<void>;
}

/**
 * A WorkerService that forwards each Connect stream to the real server and
 * records both directions: the worker under test talks to the server through
 * it, and the checks read the transcript. The upstream may restart: a stream
 * that loses it ends with the upstream's status, as it would without the proxy.
 */
export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const transcript: Entry[] = [];
  const waiters = new Set<{ match: (entry: Entry) => boolean; resolve: (entry: Entry) => void }>();
  const record = (entry: Entry) => {
    transcript.push(entry);
    for (const waiter of waiters) {
      if (waiter.match(entry)) {
        waiters.delete(waiter);
        waiter.resolve(entry);
      }
    }
  };
  const channel = createRpcChannel(upstream);
  const client = createRpcClient(WorkerServiceDefinition, channel);
  let sessions = 0;

  const server: Server = createServer();
  server.add(WorkerServiceDefinition, {
    async *connect(requests, context) {
      const session = ++sessions;
      async function* forwarded() {
        for await (const message of requests) {
          record({ at: Date.now(), session, from: 'worker', message });
          yield message;
        }
      }
      try {
        for await (const message of client.connect(forwarded(), { signal: context.signal })) {
          record({ at: Date.now(), session, from: 'server', message });
          yield message;
        }
        record({ at: Date.now(), session, from: 'end', code: Status.OK, details: '' });
      } catch (error) {
        const code = error instanceof ClientError ? error.code : Status.UNAVAILABLE;
        const details = error instanceof ClientError ? error.details : String(error);
        record({ at: Date.now(), session, from: 'end', code, details });
        throw new ServerError(code, details);
      }
    },
  });
  const port = await server.listen('127.0.0.1:0');

  return {
    address: `127.0.0.1:${port}`,
    transcript,
    waitFor(match, timeoutMs, what) {
      const seen = transcript.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (entry: Entry) => {
            clearTimeout(timer);
            resolve(entry);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`within ${timeoutMs} ms: ${what}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    async close() {
      server.forceShutdown();
      channel.close();
    },
  };
}
