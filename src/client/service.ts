import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import type { Task } from '../../gen/ts/taskwire/v1/task.js';
import type { TaskOutcome, WatchTaskResponse } from '../../gen/ts/taskwire/v1/task_service.js';
import { Code, codeOf, deadlineExceeded, TaskwireError } from '../errors.js';
import type { MessageOf, MethodDefinition, PartialOf, ServiceDefinition } from '../contract.js';
import type { SubmitOptions } from './options.js';
import { pack, unpack } from './pack.js';
import { timeoutSignal } from '../timers.js';

/** A task state by name. */
export type TaskStateName = 'SCHEDULED' | 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** What `TaskHandle.watch()` yields: committed state changes with the decoded input and output, and progress. */
export type TaskWatchEvent<Input, Result> =
  | {
      readonly kind: 'state';
      readonly state: TaskStateName;
      readonly attempt: number;
      readonly input: Input | undefined;
      /** Once SUCCEEDED. */
      readonly output: Result | undefined;
      /** One per failed attempt, oldest first. */
      readonly errors: readonly { readonly attempt: number; readonly code: number; readonly message: string; readonly retryable: boolean }[];
      /** The task record as the server sent it. */
      readonly task: Task;
    }
  | { readonly kind: 'progress'; readonly attempt: number; readonly percent: number; readonly message: string };

export const taskStateName = (state: TaskState): TaskStateName => TaskState[state]?.replace('TASK_STATE_', '') as TaskStateName;

/** A submitted task whose result has the method's response type. */
export interface TaskHandle<Result, Input = unknown> {
  readonly id: string;
  /** An idempotency key matched an existing task. */
  readonly existing: boolean;
  /** Waits for the task to end: its output, or a TaskFailedError when it FAILED or was CANCELLED. */
  result(options?: { signal?: AbortSignal }): Promise<Result>;
  /** Follows the task until it ends: each committed state, with the input and output decoded, and progress. */
  watch(options?: { signal?: AbortSignal }): AsyncIterable<TaskWatchEvent<Input, Result>>;
  cancel(reason?: string): Promise<Task>;
}

export interface CallOptions extends SubmitOptions {
  /** Cancels the task when aborted. */
  readonly signal?: AbortSignal;
  /** Gives up (and cancels the task) at this time, or after this many ms. */
  readonly deadline?: Date | number;
}

export interface TaskMethodClient<M extends MethodDefinition> {
  submit(input: PartialOf<M['requestType']>, options?: SubmitOptions): Promise<TaskHandle<MessageOf<M['responseType']>, MessageOf<M['requestType']>>>;
  /** Submits and waits for the result. */
  call(input: PartialOf<M['requestType']>, options?: CallOptions): Promise<MessageOf<M['responseType']>>;
}

export type ServiceClient<D extends ServiceDefinition> = {
  readonly [K in keyof D['methods']]: TaskMethodClient<D['methods'][K]>;
};

/**
 * Thrown when a task ends FAILED or CANCELLED: a TaskwireError whose `code`
 * is the status the failure carries (CANCELLED for a cancelled task), with
 * the task's `outcome`.
 */
export class TaskFailedError extends TaskwireError {
  constructor(readonly outcome: TaskOutcome) {
    const wasCancelled = outcome.state === TaskState.TASK_STATE_CANCELLED;
    super(
      wasCancelled ? Code.CANCELLED : outcome.error?.code ? codeOf(outcome.error.code) : Code.UNKNOWN,
      wasCancelled ? `task ${outcome.taskId} was cancelled` : `task ${outcome.taskId} failed: ${outcome.error?.message ?? 'unknown error'}`,
    );
    this.name = 'TaskFailedError';
  }
}

/** A committed submit whose outcome the server sends unasked (the submit wanted it). */
export interface StartedTask {
  readonly id: string;
  readonly existing: boolean;
  /** The task's outcome; an abort of `signal` stops the wait (not the task). */
  outcome(signal?: AbortSignal): Promise<TaskOutcome>;
}

/** What the typed layer needs from the untyped client. */
export interface UntypedClient {
  submit(type: string, input: ReturnType<typeof pack>, options?: SubmitOptions): Promise<{ id: string; existing: boolean }>;
  /** Submits asking for the outcome in the submit: one round trip less than submit + result. */
  start(type: string, input: ReturnType<typeof pack>, options?: SubmitOptions): Promise<StartedTask>;
  result(id: string, options?: { signal?: AbortSignal }): Promise<TaskOutcome>;
  watch(id: string, options?: { signal?: AbortSignal }): AsyncIterable<WatchTaskResponse['event']>;
  cancel(id: string, reason?: string): Promise<Task>;
}

function methodClient<M extends MethodDefinition>(client: UntypedClient, type: string, method: M): TaskMethodClient<M> {
  type Result = MessageOf<M['responseType']>;
  type Input = MessageOf<M['requestType']>;
  async function* watch(id: string, options?: { signal?: AbortSignal }): AsyncIterable<TaskWatchEvent<Input, Result>> {
    for await (const event of client.watch(id, options)) {
      if (event?.$case === 'progress') {
        const { attempt, percent, message } = event.value;
        yield { kind: 'progress', attempt, percent, message };
      } else if (event?.$case === 'task') {
        const task = event.value;
        yield {
          kind: 'state',
          state: taskStateName(task.state),
          attempt: task.attempt,
          input: task.input === undefined ? undefined : (unpack(method.requestType, task.input) as Input),
          output: task.output === undefined ? undefined : (unpack(method.responseType, task.output) as Result),
          errors: task.errors.map(({ attempt, code, message, retryable }) => ({ attempt, code, message, retryable })),
          task,
        };
      }
    }
  }
  const resultOf = async (id: string, options?: { signal?: AbortSignal }): Promise<Result> => succeeded(await client.result(id, options));
  const succeeded = (outcome: TaskOutcome): Result => {
    if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new TaskFailedError(outcome);
    return unpack(method.responseType, outcome.output) as Result;
  };
  const submit = async (input: PartialOf<M['requestType']>, options?: SubmitOptions): Promise<TaskHandle<Result, Input>> => {
    const { id, existing } = await client.submit(type, pack(method.requestType, input as never), options);
    return {
      id,
      existing,
      result: (resultOptions) => resultOf(id, resultOptions),
      watch: (watchOptions) => watch(id, watchOptions),
      cancel: (reason) => client.cancel(id, reason),
    };
  };
  return {
    submit,
    async call(input, options = {}) {
      const { signal, deadline, ...submitOptions } = options;
      const remaining =
        deadline === undefined ? undefined : Math.max(1, (deadline instanceof Date ? deadline.getTime() : Date.now() + deadline) - Date.now());
      const started = await client.start(type, pack(method.requestType, input as never), {
        ...submitOptions,
        // Past the caller's deadline nobody wants the result: neither start nor run beyond it.
        ...(remaining === undefined ? {} : { executionTimeoutMs: remaining, queueTimeoutMs: remaining }),
      });
      const timer = remaining === undefined ? undefined : timeoutSignal(remaining);
      const giveUp = timer === undefined ? signal : signal === undefined ? timer : AbortSignal.any([signal, timer]);
      try {
        return succeeded(await started.outcome(giveUp));
      } catch (error) {
        if (!giveUp?.aborted) throw error;
        await client.cancel(started.id, timer?.aborted ? 'the caller’s deadline passed' : 'the caller cancelled').catch(() => undefined);
        if (timer?.aborted) throw deadlineExceeded(`task ${started.id} did not finish before the deadline`);
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
