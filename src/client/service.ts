import { Status } from 'nice-grpc';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { Task } from '../../gen/ts/taskwire/v1/task.js';
import type { TaskOutcome, WatchTaskResponse } from '../../gen/ts/taskwire/v1/task_service.js';
import { Code, TaskwireError } from '../errors.js';
import type { MessageType, MethodDefinition, ServiceDefinition } from '../worker/types.js';
import type { SubmitOptions } from './options.js';
import { pack, unpack } from './pack.js';

type MessageOf<M> = M extends MessageType<infer T> ? T : never;
type PartialOf<M> = M extends { fromPartial(object: infer P): unknown } ? P : never;

/** A submitted task whose result has the method's response type. */
export interface TaskHandle<Result> {
  readonly id: string;
  /** An idempotency key matched an existing task. */
  readonly existing: boolean;
  /** Waits for the task to end: its output, or a TaskFailedError when it FAILED or was CANCELLED. */
  result(options?: { signal?: AbortSignal }): Promise<Result>;
  watch(options?: { signal?: AbortSignal }): AsyncIterable<WatchTaskResponse['event']>;
  cancel(reason?: string): Promise<Task>;
}

export interface CallOptions extends SubmitOptions {
  /** Cancels the task when aborted. */
  readonly signal?: AbortSignal;
  /** Gives up (and cancels the task) at this time, or after this many ms. */
  readonly deadline?: Date | number;
}

export interface TaskMethodClient<M extends MethodDefinition> {
  submit(input: PartialOf<M['requestType']>, options?: SubmitOptions): Promise<TaskHandle<MessageOf<M['responseType']>>>;
  /** Submits and waits for the result. */
  call(input: PartialOf<M['requestType']>, options?: CallOptions): Promise<MessageOf<M['responseType']>>;
}

export type ServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: TaskMethodClient<D['methods'][K]>;
};

/** Thrown when a task ends FAILED or CANCELLED; `code` is the status the failure carries. */
export class TaskFailedError extends Error {
  constructor(readonly outcome: TaskOutcome) {
    super(
      outcome.state === TaskState.TASK_STATE_CANCELLED
        ? `task ${outcome.taskId} was cancelled`
        : `task ${outcome.taskId} failed: ${outcome.error?.message ?? 'unknown error'}`,
    );
    this.name = 'TaskFailedError';
  }

  get code(): Status {
    if (this.outcome.state === TaskState.TASK_STATE_CANCELLED) return Status.CANCELLED;
    return (this.outcome.error?.code || Status.UNKNOWN) as Status;
  }
}

/** What the typed layer needs from the untyped client. */
export interface UntypedClient {
  submit(type: string, input: ReturnType<typeof pack>, options?: SubmitOptions): Promise<{ id: string; existing: boolean }>;
  result(id: string, options?: { signal?: AbortSignal }): Promise<TaskOutcome>;
  watch(id: string, options?: { signal?: AbortSignal }): AsyncIterable<WatchTaskResponse['event']>;
  cancel(id: string, reason?: string): Promise<Task>;
}

function methodClient<M extends MethodDefinition>(client: UntypedClient, type: string, method: M): TaskMethodClient<M> {
  type Result = MessageOf<M['responseType']>;
  const resultOf = async (id: string, options?: { signal?: AbortSignal }): Promise<Result> => {
    const outcome = await client.result(id, options);
    if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new TaskFailedError(outcome);
    return unpack(method.responseType, outcome.output) as Result;
  };
  const submit = async (input: PartialOf<M['requestType']>, options?: SubmitOptions): Promise<TaskHandle<Result>> => {
    const { id, existing } = await client.submit(type, pack(method.requestType, input as never), options);
    return {
      id,
      existing,
      result: (resultOptions) => resultOf(id, resultOptions),
      watch: (watchOptions) => client.watch(id, watchOptions),
      cancel: (reason) => client.cancel(id, reason),
    };
  };
  return {
    submit,
    async call(input, options = {}) {
      const { signal, deadline, ...submitOptions } = options;
      const remaining =
        deadline === undefined ? undefined : Math.max(1, (deadline instanceof Date ? deadline.getTime() : Date.now() + deadline) - Date.now());
      const handle = await submit(input, {
        ...submitOptions,
        // Past the caller's deadline nobody wants the result: neither start nor run beyond it.
        ...(remaining === undefined ? {} : { executionTimeoutMs: remaining, queueTimeoutMs: remaining }),
      });
      const timer = remaining === undefined ? undefined : AbortSignal.timeout(remaining);
      const giveUp = AbortSignal.any([...(signal ? [signal] : []), ...(timer ? [timer] : [])]);
      try {
        return await resultOf(handle.id, { signal: giveUp });
      } catch (error) {
        if (!giveUp.aborted) throw error;
        await handle.cancel(timer?.aborted ? 'the caller’s deadline passed' : 'the caller cancelled').catch(() => undefined);
        if (timer?.aborted) throw new TaskwireError(Code.DEADLINE_EXCEEDED, `task ${handle.id} did not finish before the deadline`);
        throw error;
      }
    },
  };
}

/** Typed submit and call for every method of a generated task service definition. */
export function serviceClient<D extends ServiceDefinition>(client: UntypedClient, definition: D): ServiceClient<D> {
  const methods: Record<string, TaskMethodClient<MethodDefinition>> = {};
  for (const [key, method] of Object.entries(definition.methods)) {
    methods[key] = methodClient(client, `/${definition.fullName}/${method.name}`, method);
  }
  return methods as ServiceClient<D>;
}
