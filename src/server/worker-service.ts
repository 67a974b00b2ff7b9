import {
  ProtocolVersion,
  type ConnectRequest,
  type ConnectResponse,
  type WorkerServiceImplementation,
} from '../../gen/ts/taskwire/v1/worker_service.js';
import type { Broker, WorkerConnection } from '../broker/index.js';
import { deadlineExceeded, failedPrecondition, invalidArgument, unavailable } from '../errors.js';
import type { TaskwireCallContext } from '../rpc/index.js';
import { mergeMessages, msToDuration } from '../contract.js';
import { toAttemptRefs, toConnectResponse, toPayload, toWelcome, toWorkerHello } from './convert.js';
import { Outbox } from '../rpc/outbox.js';
import { WORKER_RESPONSE_LIMITS } from './worker-batches.js';

type Response = Partial<ConnectResponse>;

/** Longest an acknowledgement waits for a message to ride along with. */
const ACK_DELAY_MS = 50;

/** Merges queued items into one complete ConnectResponse (the stream skips fromPartial). */
function mergeResponses(messages: Response[]): ConnectResponse {
  return mergeMessages(emptyResponse, messages);
}

const emptyResponse = (): ConnectResponse => ({
  welcome: undefined,
  assignments: [],
  cancels: [],
  drain: undefined,
  rejected: [],
  acknowledged: [],
  rejections: [],
});


/** Longest progress message kept; the rest is cut (docs/PROTOCOL.md). */
const PROGRESS_MESSAGE_MAX = 1024;
/** Longest failure message kept; the rest is cut. */
const FAIL_MESSAGE_MAX = 4096;

/**
 * Applies one worker message to its session: progress (it came first),
 * results, credit last. Each item stands alone: a malformed one is refused or
 * fails its own attempt, never the session and its other leases.
 */
function apply(connection: WorkerConnection, request: ConnectRequest): void {
  connection.touch();
  if (request.hello !== undefined) {
    throw invalidArgument('hello may be sent only once, in the first message of a Connect stream');
  }
  if (request.progress.length > 0) {
    // One rule for out-of-range percents: clamped into 0..100 (infinities too); NaN says nothing and is dropped.
    const reports = request.progress.filter((p) => !Number.isNaN(p.percent));
    connection.progress(
      reports.map((p) => ({
        id: p.taskId,
        attempt: p.attempt,
        percent: Math.min(100, Math.max(0, p.percent)),
        message: p.message.slice(0, PROGRESS_MESSAGE_MAX),
      })),
    );
  }
  if (request.completes.length > 0) {
    connection.complete(request.completes.map((c) => ({ id: c.taskId, attempt: c.attempt, output: toPayload(c.output) })));
  }
  if (request.fails.length > 0) {
    connection.fail(
      request.fails.map((f) => ({
        id: f.taskId,
        attempt: f.attempt,
        message: f.message.slice(0, FAIL_MESSAGE_MAX),
        code: f.code,
        retryable: f.retryable,
      })),
    );
  }
  if (request.releases.length > 0) connection.release(request.releases.map((r) => ({ id: r.taskId, attempt: r.attempt })));
  if (request.credit > 0) connection.credit(request.credit);
}

export interface WorkerServiceOptions {
  /** Grace announced in Drain. */
  readonly graceMs: number;
  /**
   * Drain a session after this long (±10 %), so workers reconnect and long-lived
   * streams spread again over the replicas after a scale-up. Off when absent.
   */
  readonly maxSessionAgeMs?: number;
  /** A Connect stream that has not said Hello by then is closed. Default 10 s. */
  readonly helloTimeoutMs?: number;
}

/** The first message, or an error once `timeoutMs` passes without one. */
async function firstMessage<T>(iterator: AsyncIterator<T>, timeoutMs: number): Promise<IteratorResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(deadlineExceeded(`no hello within ${timeoutMs} ms of opening Connect; send hello first`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([iterator.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createWorkerService(broker: Broker, options: WorkerServiceOptions): WorkerServiceImplementation<TaskwireCallContext> {
  const { graceMs, maxSessionAgeMs } = options;
  const helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
  return {
    async *connect(requests, context) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await firstMessage(iterator, helloTimeoutMs);
      const hello = first.done ? undefined : first.value.hello;
      if (hello === undefined) {
        throw invalidArgument('the first message on Connect must carry hello');
      }
      if (hello.protocol !== ProtocolVersion.PROTOCOL_VERSION_1) {
        throw failedPrecondition(`hello.protocol ${hello.protocol} is not spoken here; this server speaks PROTOCOL_VERSION_1`);
      }

      const outbox = new Outbox<Response, ConnectResponse>(mergeResponses, WORKER_RESPONSE_LIMITS);
      const { session, welcome } = await broker.openSession(
        toWorkerHello(hello, context.peer, context.principal?.name),
        {
          send(message) {
            outbox.push(toConnectResponse(message));
          },
          acknowledge(acknowledged) {
            // A worker only needs these to forget results it keeps for a resend: no hurry.
            outbox.defer({ acknowledged: toAttemptRefs(acknowledged) }, ACK_DELAY_MS);
          },
          close(reason) {
            outbox.fail(unavailable(reason.message));
          },
        },
      );
      context.log.debug({ sessionId: welcome.sessionId, workerId: hello.workerId }, 'session opened');

      // Welcome goes first, ahead of any assignment queued meanwhile.
      yield mergeResponses([{ welcome: toWelcome(welcome) }]);

      let drained = false;
      const onDrain = () => {
        if (drained) return;
        drained = true;
        session.drain();
        outbox.push({ drain: { grace: msToDuration(graceMs) } });
      };
      const onAbort = () => outbox.end();
      context.draining.addEventListener('abort', onDrain, { once: true });
      const ageTimer =
        maxSessionAgeMs === undefined ? undefined : setTimeout(onDrain, maxSessionAgeMs * (0.9 + Math.random() / 5));
      context.signal.addEventListener('abort', onAbort, { once: true });
      void (async () => {
        const { hello: _, ...rest } = first.value;
        apply(session, { ...rest, hello: undefined });
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) apply(session, next.value);
      })().then(
        () => outbox.end(),
        (error: unknown) => outbox.fail(error),
      );
      try {
        yield* outbox;
      } finally {
        clearTimeout(ageTimer);
        context.draining.removeEventListener('abort', onDrain);
        context.signal.removeEventListener('abort', onAbort);
        session.closed();
      }
    },
  };
}
