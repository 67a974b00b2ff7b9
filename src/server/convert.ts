import type { Any } from '../../gen/ts/google/protobuf/any.js';
import {
  TaskView,
  type ConcurrencyKeyStats,
  type QueueStats,
  type SessionAck,
  type SubmitTaskResponse,
  type TaskOutcome,
  type WorkerInfo,
} from '../../gen/ts/taskwire/v1/task_service.js';
import type { SubmitTaskRequest } from '../../gen/ts/taskwire/v1/task_service.js';
import { TaskState, type Task, type TaskError, type TaskOptions } from '../../gen/ts/taskwire/v1/task.js';
import type { QueueStatsRecord, SubmitRequest, WorkerHello, WorkerSink, WorkerSnapshot, WorkerWelcome } from '../broker/index.js';
import { durationToMs, msToDuration } from '../contract.js';
import { Code, TaskwireError } from '../errors.js';
import type { AttemptRef, InsertResult, KeyCounts, Lease, Payload, TaskErrorRecord, TaskEnd, TaskRecord } from '../store/index.js';
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

/** The answer to a follow of an id that names no task: state UNSPECIFIED, the lookup's error as its error. */
export function notFoundOutcome(id: string, error: unknown): TaskOutcome {
  return {
    taskId: id,
    state: TaskState.TASK_STATE_UNSPECIFIED,
    output: undefined,
    error: {
      attempt: 0,
      message: error instanceof Error ? error.message : String(error),
      code: error instanceof TaskwireError ? error.code : Code.INTERNAL,
      retryable: false,
      workerId: '',
      time: new Date(),
    },
    attempt: 0,
  };
}

export const toSubmitResponse = (result: InsertResult): SubmitTaskResponse => ({
  task: toTask(result.task, TaskView.TASK_VIEW_BASIC),
  existing: result.existing,
});

/** A Session's ack of one submit: its task, or the error that refused it. */
export function toSubmitAck(ref: number, result: InsertResult | TaskwireError): SessionAck {
  return result instanceof TaskwireError
    ? { ref, taskId: '', error: { code: result.code, message: result.message }, existing: false }
    : { ref, taskId: result.task.id, existing: result.existing };
}

export function toWorkerInfo(worker: WorkerSnapshot): WorkerInfo {
  return {
    workerId: worker.workerId,
    sessionId: worker.sessionId,
    taskTypes: [...worker.taskTypes],
    slots: worker.slots,
    running: worker.running,
    labels: { ...worker.labels },
    version: worker.version,
    peer: worker.peer,
    connectTime: new Date(worker.connectedAt),
    lastSeenTime: new Date(worker.lastSeenAt),
    replica: worker.replica,
  };
}

/** Keys listed per queue in GetQueueStats (the count covers them all). */
const MAX_LISTED_KEYS = 20;

/** Per queue, its keys with tasks waiting, most waiting first. */
function waitingKeysByQueue(keys: readonly KeyCounts[]): Map<string, ConcurrencyKeyStats[]> {
  const byQueue = new Map<string, ConcurrencyKeyStats[]>();
  for (const k of [...keys].sort((a, b) => b.waiting - a.waiting || a.key.localeCompare(b.key))) {
    let list = byQueue.get(k.queue);
    if (list === undefined) byQueue.set(k.queue, (list = []));
    list.push({ key: k.key, waiting: k.waiting, running: k.running });
  }
  return byQueue;
}

/** Each queue's counts, rates and oldest age, with its busiest waiting keys. */
export function toQueueStats(stats: readonly QueueStatsRecord[], keys: readonly KeyCounts[]): QueueStats[] {
  const keysOf = waitingKeysByQueue(keys);
  return stats.map((q) => ({
    queue: q.queue,
    scheduled: q.counts[TaskState.TASK_STATE_SCHEDULED] ?? 0,
    queued: q.counts[TaskState.TASK_STATE_QUEUED] ?? 0,
    running: q.counts[TaskState.TASK_STATE_RUNNING] ?? 0,
    succeeded: q.counts[TaskState.TASK_STATE_SUCCEEDED] ?? 0,
    failed: q.counts[TaskState.TASK_STATE_FAILED] ?? 0,
    cancelled: q.counts[TaskState.TASK_STATE_CANCELLED] ?? 0,
    oldestQueuedAge: msToDuration(q.oldestQueuedMs),
    submittedPerSecond: q.rates.submitted,
    succeededPerSecond: q.rates.succeeded,
    failedPerSecond: q.rates.failed,
    waitingKeys: keysOf.get(q.queue)?.slice(0, MAX_LISTED_KEYS) ?? [],
    waitingKeyCount: keysOf.get(q.queue)?.length ?? 0,
    paused: q.paused,
  }));
}
