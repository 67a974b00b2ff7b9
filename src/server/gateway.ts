import type { MethodDefinition } from '@grpc/grpc-js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { Broker, Submitted, TaskTypeInfo } from '../broker/index.js';
import { aborted, cancelled, Code, codeOf, TaskwireError, unavailable } from '../errors.js';
import type { UnaryHandler } from '../rpc/index.js';
import type { TaskEnd, TaskRecord } from '../store/index.js';
import { taskLogFields, traceHeaders } from '../metrics/index.js';
import { onAbort } from '../timers.js';

/** Metadata key for an idempotency key on a gateway call. */
export const IDEMPOTENCY_KEY_HEADER = 'taskwire-idempotency-key';
/** Response header naming the task a gateway call created (or found). */
export const TASK_ID_HEADER = 'taskwire-task-id';

type Bytes = Uint8Array;
const identity = (bytes: Bytes) => bytes;
/** grpc-js copies a response out of a Buffer: a view of the same bytes, not a copy. */
const asBuffer = (bytes: Bytes): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/**
 * Status of a gateway call whose task failed. A non-retryable failure keeps
 * the code its handler gave (INVALID_ARGUMENT stays INVALID_ARGUMENT); a
 * retryable failure that ran out of attempts is ABORTED; a task cancelled
 * by someone else is CANCELLED.
 */
function gatewayStatus(outcome: TaskEnd | TaskRecord): TaskwireError {
  if (outcome.state === TaskState.TASK_STATE_CANCELLED) return cancelled(`task ${outcome.id} was cancelled`);
  const error = 'errors' in outcome ? outcome.errors.at(-1) : outcome.error;
  const message = error?.message ?? 'unknown error';
  if (error === undefined || !error.retryable) return new TaskwireError(error?.code ? codeOf(error.code) : Code.UNKNOWN, message);
  return aborted(`task ${outcome.id} failed after ${outcome.attempt} attempts; last error: ${message}`);
}

/**
 * Waits for the task's terminal state. If the caller goes away first
 * (cancelled, or its deadline passed), the task is cancelled too. If the
 * server begins to shut down, the call ends UNAVAILABLE and the task is left
 * to run: the caller retries with its idempotency key and gets the same task.
 */
function outcomeOf(broker: Broker, submitted: Submitted, signal: AbortSignal, draining: AbortSignal): Promise<TaskEnd | TaskRecord> {
  const id = submitted.task.id;
  return new Promise((resolve, reject) => {
    let stopDrainWatch: () => void = () => undefined;
    const cleanup = () => {
      stop();
      signal.removeEventListener('abort', onCallerGone);
      stopDrainWatch();
    };
    const onDrain = () => {
      cleanup();
      reject(unavailable(`the server is shutting down; task ${id} goes on: call again with the same idempotency key, or watch it`));
    };
    const onCallerGone = () => {
      if (draining.aborted) return onDrain();
      cleanup();
      broker.cancel(id, 'the gateway caller cancelled or its deadline passed').catch(() => undefined);
      reject(cancelled('the call was cancelled'));
    };
    const stop = broker.onOutcome(
      id,
      (outcome) => {
        signal.removeEventListener('abort', onCallerGone);
        stopDrainWatch();
        resolve(outcome);
      },
      {
        submitted,
        // An idempotent resubmit's task is read again; it may have been deleted meanwhile.
        missing: (error) => {
          signal.removeEventListener('abort', onCallerGone);
          stopDrainWatch();
          reject(error);
        },
      },
    );
    if (draining.aborted) onDrain();
    else if (signal.aborted) onCallerGone();
    else {
      signal.addEventListener('abort', onCallerGone, { once: true });
      // Thousands of calls may wait on the one drain signal: see onAbort.
      stopDrainWatch = onAbort(draining, onDrain);
    }
  });
}

/**
 * One task service as plain unary gRPC methods: a call enqueues a task
 * durably, waits for its result and returns it as the response. Messages
 * pass through as bytes (identity serializers): the request becomes the
 * task's input without a decode and re-encode.
 */
export function createGateway(broker: Broker, types: readonly TaskTypeInfo[]) {
  const definition: Record<string, MethodDefinition<Bytes, Bytes>> = {};
  const implementation: Record<string, UnaryHandler<Bytes, Bytes>> = {};
  for (const info of types) {
    const name = info.type.slice(info.type.lastIndexOf('/') + 1);
    definition[name] = {
      path: info.type,
      requestStream: false,
      responseStream: false,
      requestSerialize: asBuffer,
      requestDeserialize: identity,
      responseSerialize: asBuffer,
      responseDeserialize: identity,
    };
    implementation[name] = async (request, context) => {
      const remaining = context.deadline === undefined ? undefined : Math.max(1, context.deadline.getTime() - Date.now());
      const key = context.metadata.get(IDEMPOTENCY_KEY_HEADER);
      const traceContext = traceHeaders((header) => context.metadata.get(header));
      const [submitted] = await broker.submit([
        {
          type: info.type,
          input: { typeUrl: info.inputTypeUrl ?? '', value: request },
          options: {
            ...(key === undefined ? {} : { idempotencyKey: key }),
            ...(traceContext.traceparent === undefined ? {} : { traceContext }),
            ...(remaining === undefined ? {} : { executionTimeoutMs: remaining, queueTimeoutMs: remaining }),
          },
        },
      ]);
      context.logFields(taskLogFields(submitted!.task.id, submitted!.task.options.traceContext));
      context.header.set(TASK_ID_HEADER, submitted!.task.id);
      // Sent now, not with the response: a caller can watch the task while it waits.
      context.sendHeader();
      const outcome = await outcomeOf(broker, submitted!, context.signal, context.draining);
      if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED || outcome.output === undefined) throw gatewayStatus(outcome);
      return outcome.output.value;
    };
  }
  return { definition, implementation };
}
