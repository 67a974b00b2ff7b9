import type { Any } from '../../gen/ts/google/protobuf/any.js';
import { TaskView, type TaskOutcome } from '../../gen/ts/taskwire/v1/task_service.js';
import type { SubmitTaskRequest } from '../../gen/ts/taskwire/v1/task_service.js';
import { TaskState, type Task, type TaskError, type TaskOptions } from '../../gen/ts/taskwire/v1/task.js';
import type { SubmitRequest, WorkerHello, WorkerSink, WorkerWelcome } from '../broker/index.js';
import { durationToMs, msToDuration } from '../contract.js';
import type { AttemptRef, Lease, Payload, TaskErrorRecord, TaskEnd, TaskRecord } from '../store/index.js';
import type {
  AttemptRef as ProtoAttemptRef,
  Assignment,
  ConnectResponse,
  Hello,
  Welcome,
} from '../../gen/ts/taskwire/v1/worker_service.js';

type WorkerMessage = Parameters<WorkerSink['send']>[0];

/** Proto ↔ broker records. The only place that knows both shapes. */

const date = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));

export function toPayload(any: Any | undefined): Payload | undefined {
  return any === undefined ? undefined : { typeUrl: any.typeUrl, value: any.value };
}

export function toAny(payload: Payload): Any {
  return { typeUrl: payload.typeUrl, value: Buffer.from(payload.value.buffer, payload.value.byteOffset, payload.value.byteLength) };
}

export function toSubmitRequest(request: SubmitTaskRequest): SubmitRequest {
  const options = request.options;
  const input = toPayload(request.input);
  if (options === undefined) return { type: request.type, ...(input === undefined ? {} : { input }) };
  const backoff = options.backoff;
  return {
    type: request.type,
    ...(input === undefined ? {} : { input }),
    options: {
      queue: options.queue,
      priority: options.priority,
      ...(options.runAt === undefined ? {} : { runAt: options.runAt.getTime() }),
      ...(options.delay === undefined ? {} : { delayMs: durationToMs(options.delay) }),
      maxAttempts: options.maxAttempts,
      ...(backoff === undefined
        ? {}
        : {
            backoff: {
              ...(backoff.initial === undefined ? {} : { initialMs: durationToMs(backoff.initial) }),
              ...(backoff.max === undefined ? {} : { maxMs: durationToMs(backoff.max) }),
              ...(backoff.multiplier === 0 ? {} : { multiplier: backoff.multiplier }),
              ...(backoff.jitter === undefined ? {} : { jitter: backoff.jitter }),
            },
          }),
      ...(options.executionTimeout === undefined ? {} : { executionTimeoutMs: durationToMs(options.executionTimeout) }),
      ...(options.queueTimeout === undefined ? {} : { queueTimeoutMs: durationToMs(options.queueTimeout) }),
      idempotencyKey: options.idempotencyKey,
      labels: options.labels,
      traceContext: options.traceContext,
      concurrencyKey: options.concurrencyKey,
      concurrencyLimit: options.concurrencyLimit,
    },
  };
}

function toTaskError(error: TaskErrorRecord): TaskError {
  return {
    attempt: error.attempt,
    message: error.message,
    code: error.code,
    retryable: error.retryable,
    workerId: error.workerId ?? '',
    time: new Date(error.time),
  };
}

export function toTaskOptions(record: TaskRecord): TaskOptions {
  const options = record.options;
  return {
    queue: options.queue,
    priority: options.priority,
    runAt: new Date(record.runAt),
    delay: undefined,
    maxAttempts: options.maxAttempts,
    backoff: {
      initial: msToDuration(options.backoff.initialMs),
      max: msToDuration(options.backoff.maxMs),
      multiplier: options.backoff.multiplier,
      jitter: options.backoff.jitter,
    },
    executionTimeout: msToDuration(options.executionTimeoutMs),
    queueTimeout: msToDuration(options.queueTimeoutMs),
    idempotencyKey: options.idempotencyKey ?? '',
    labels: { ...options.labels },
    traceContext: { ...options.traceContext },
    concurrencyKey: options.concurrencyKey ?? '',
    concurrencyLimit: options.concurrencyLimit ?? 0,
  };
}

/** Attempts as the worker protocol names them. */
export const toAttemptRefs = (items: readonly AttemptRef[]): ProtoAttemptRef[] => items.map((r) => ({ taskId: r.id, attempt: r.attempt }));

export function toAssignment(lease: Lease): Assignment {
  return {
    taskId: lease.id,
    attempt: lease.attempt,
    type: lease.type,
    input: toAny(lease.input),
    deadline: lease.deadlineAt === undefined ? undefined : new Date(lease.deadlineAt),
    metadata: lease.metadata === undefined ? {} : { ...lease.metadata },
    queue: lease.queue,
    maxAttempts: lease.maxAttempts,
  };
}

/** What the broker sends one worker, as (part of) a ConnectResponse. */
export function toConnectResponse(message: WorkerMessage): Partial<ConnectResponse> {
  return {
    assignments: message.assignments?.map(toAssignment) ?? [],
    cancels: message.cancels?.map((c) => ({ taskId: c.id, attempt: c.attempt, reason: c.reason })) ?? [],
    rejected: toAttemptRefs(message.rejected ?? []),
    rejections: (message.rejected ?? []).map((r) => ({ taskId: r.id, attempt: r.attempt, reason: r.reason })),
  };
}

/** A worker's Hello, with who and where it is: `principal` is its token's name when tokens are on. */
export function toWorkerHello(hello: Hello, peer: string, principal: string | undefined): WorkerHello {
  return {
    workerId: hello.workerId,
    ...(principal === undefined ? {} : { principal }),
    taskTypes: hello.taskTypes,
    slots: hello.slots,
    labels: hello.labels,
    version: hello.version,
    peer,
    resume: hello.resume.map((r) => ({ id: r.taskId, attempt: r.attempt })),
  };
}

export function toWelcome(welcome: WorkerWelcome): Welcome {
  return {
    sessionId: welcome.sessionId,
    heartbeatInterval: msToDuration(welcome.heartbeatMs),
    lease: msToDuration(welcome.leaseMs),
    resumed: toAttemptRefs(welcome.resumed),
  };
}

/**
 * A stored task as the contract's Task. The BASIC view leaves out the input
 * and output, each of which may be as large as a whole message.
 */
export function toTask(record: TaskRecord, view: TaskView.TASK_VIEW_BASIC | TaskView.TASK_VIEW_FULL = TaskView.TASK_VIEW_FULL): Task {
  const full = view === TaskView.TASK_VIEW_FULL;
  return {
    id: record.id,
    type: record.type,
    state: record.state,
    input: full ? toAny(record.input) : undefined,
    output: full && record.output !== undefined ? toAny(record.output) : undefined,
    options: toTaskOptions(record),
    attempt: record.attempt,
    errors: record.errors.map(toTaskError),
    createTime: date(record.createdAt),
    updateTime: date(record.updatedAt),
    runTime: date(record.runAt),
    startTime: date(record.startedAt),
    finishTime: date(record.finishedAt),
    workerId: record.workerId ?? '',
    progressPercent: record.progressPercent,
    progressMessage: record.progressMessage,
    cancelReason: record.cancelReason ?? '',
  };
}

/** A terminal event or record as the outcome a Session sends. */
export function toOutcome(outcome: TaskEnd | TaskRecord): TaskOutcome {
  const error = 'errors' in outcome ? outcome.errors.at(-1) : outcome.error;
  return {
    taskId: outcome.id,
    state: outcome.state,
    output: outcome.output === undefined ? undefined : toAny(outcome.output),
    error: outcome.state === TaskState.TASK_STATE_FAILED && error !== undefined ? toTaskError(error) : undefined,
    attempt: outcome.attempt,
  };
}

/** Bytes of a task's payloads: what the FULL view adds to the BASIC one. */
export const payloadBytes = (record: TaskRecord) => record.input.value.length + (record.output?.value.length ?? 0);
