import type { Any } from '../../gen/ts/google/protobuf/any.js';
import { TaskState, type Task, type TaskOptions } from '../../gen/ts/taskwire/v1/task.js';
import {
  TaskServiceDefinition,
  type CancelTasksRequest,
  type CancelTasksResponse,
  type ListTasksRequest,
  type RetryTasksRequest,
  type RetryTasksResponse,
  type TaskFilter,
  type QueueStats,
  type SessionRequest,
  type TaskOutcome,
  type WatchTaskResponse,
  type WorkerInfo,
} from '../../gen/ts/taskwire/v1/task_service.js';
import { Code, codeOf, TaskwireError, unavailable } from '../errors.js';
import { createRpcChannel, createRpcClient, Outbox, ReconnectBackoff, withExactMessages, type RpcChannelOptions } from '../rpc/index.js';
import { mergeMessages, type ServiceDefinition } from '../contract.js';
import { oversizedSubmit, sessionLimits } from './batcher.js';
import { statusToTaskwireError } from './errors.js';
import { toTaskOptions, withTraceContext, type SubmitOptions } from './options.js';
import { serviceClient, type ServiceClient, type StartedTask } from './service.js';
import { scheduleClient, type ScheduleClient } from './schedules.js';

export interface ClientOptions extends RpcChannelOptions {
  /** Server address: host:port, or dns:///name:port for round-robin over several. */
  readonly server: string;
  readonly token?: string;
}

export interface SubmitItem {
  readonly type: string;
  readonly input: Any;
  readonly options?: SubmitOptions;
}

export interface Submitted {
  readonly id: string;
  /** An idempotency key matched an existing task. */
  readonly existing: boolean;
}

export interface TaskwireClient {
  /** Queues a task; resolves once it is committed. */
  submit(type: string, input: Any, options?: SubmitOptions): Promise<Submitted>;
  /** Queues many tasks over the session stream; each resolves or rejects on its own. */
  submitMany(items: readonly SubmitItem[]): Promise<Submitted[]>;
  /** Submits and waits for the outcome, asking for it in the submit itself (one round trip less than submit + result). */
  run(type: string, input: Any, options?: SubmitOptions): Promise<TaskOutcome>;
  get(id: string): Promise<Task>;
  /** The task, then its committed changes and progress, until terminal. */
  watch(id: string, options?: { signal?: AbortSignal }): AsyncIterable<WatchTaskResponse['event']>;
  /** Waits for the terminal state. */
  result(id: string, options?: { signal?: AbortSignal }): Promise<TaskOutcome>;
  cancel(id: string, reason?: string): Promise<Task>;
  retry(id: string): Promise<Task>;
  /** Retries the FAILED and CANCELLED tasks matching a filter (admin): at most `limit` a call; `more` says call again. */
  retryMatching(request: Omit<Partial<RetryTasksRequest>, 'filter'> & { filter: Partial<TaskFilter> }): Promise<RetryTasksResponse>;
  /** Cancels the SCHEDULED, QUEUED and RUNNING tasks matching a filter (admin), as `cancel` does each. */
  cancelMatching(request: Omit<Partial<CancelTasksRequest>, 'filter'> & { filter: Partial<TaskFilter> }): Promise<CancelTasksResponse>;
  list(filter?: Partial<ListTasksRequest>): Promise<{ tasks: Task[]; nextPageToken: string }>;
  workers(): Promise<WorkerInfo[]>;
  stats(queue?: string): Promise<QueueStats[]>;
  /** Schedules: create, change, pause and read them (admin role). */
  readonly schedules: ScheduleClient;
  /** Pauses a queue (admin): it keeps taking submits and dispatches nothing. False when it was paused already. */
  pauseQueue(queue: string): Promise<boolean>;
  /** Resumes a paused queue (admin). False when it was not paused. */
  resumeQueue(queue: string): Promise<boolean>;
  /** Deletes a finished task (admin); its idempotency key is freed. */
  deleteTask(id: string): Promise<void>;
  /** Deletes a queue's finished tasks (admin): every end state unless `states` says; returns how many. */
  purgeQueue(queue: string, options?: { states?: readonly TaskState[]; finishedBefore?: Date }): Promise<number>;
  /** Typed submit and call for the methods of a generated task service definition. */
  service<D extends ServiceDefinition>(definition: D): ServiceClient<D>;
  close(): void;
}

interface Pending {
  resolve(value: Submitted): void;
  reject(error: Error): void;
  /** Set when the submit asked for the outcome on the stream. */
  outcome?: (outcome: TaskOutcome) => void;
}

/** One complete SessionRequest from the queued items (the stream skips fromPartial). */
function mergeRequests(messages: Partial<SessionRequest>[]): SessionRequest {
  return mergeMessages((): SessionRequest => ({ submits: [], follow: [] }), messages);
}

/**
 * The web service's client. Submits and results travel over one `Session`
 * stream, opened on first use and reopened after a failure; everything else
 * is a unary call.
 */
export function createClient(options: ClientOptions): TaskwireClient {
  const channel = createRpcChannel(options.server, options);
  const rpc = createRpcClient(withExactMessages(TaskServiceDefinition, ['session']), channel, {
    ...(options.token === undefined ? {} : { token: options.token }),
    middleware: statusToTaskwireError,
  });
  const pending = new Map<number, Pending>();
  const waiters = new Map<string, Set<(outcome: TaskOutcome) => void>>();
  let nextRef = 1;
  let stream: Outbox<Partial<SessionRequest>, SessionRequest> | undefined;
  const closeController = new AbortController();
  const backoff = new ReconnectBackoff(options.reconnectMinMs, options.reconnectMaxMs);

  function session(): Outbox<Partial<SessionRequest>, SessionRequest> {
    if (stream !== undefined) return stream;
    const out = new Outbox<Partial<SessionRequest>, SessionRequest>(mergeRequests, sessionLimits(options.maxMessageBytes));
    stream = out;
    // Re-follow tasks whose results are still awaited (after a reconnect).
    if (waiters.size > 0) out.push({ follow: [...waiters.keys()] });
    void (async () => {
      try {
        for await (const response of rpc.session(out, { signal: closeController.signal })) {
          backoff.reset();
          for (const ack of response.acks) {
            const p = pending.get(Number(ack.ref));
            if (p === undefined) continue;
            pending.delete(Number(ack.ref));
            if (ack.error !== undefined && ack.error.code !== 0) {
              p.reject(new TaskwireError(codeOf(ack.error.code), ack.error.message));
            } else {
              if (p.outcome !== undefined) addWaiter(ack.taskId, p.outcome);
              p.resolve({ id: ack.taskId, existing: ack.existing });
            }
          }
          for (const outcome of response.outcomes) {
            const set = waiters.get(outcome.taskId);
            waiters.delete(outcome.taskId);
            for (const resolve of set ?? []) resolve(outcome);
          }
        }
        throw unavailable('the session stream ended');
      } catch (error) {
        if (stream === out) stream = undefined;
        const failure = error instanceof Error ? error : new TaskwireError(Code.UNKNOWN, String(error));
        // A submit without its ack may or may not be committed: retry it with an idempotency key.
        for (const p of pending.values()) p.reject(failure);
        pending.clear();
        if (waiters.size > 0 && !closeController.signal.aborted) {
          setTimeout(() => session(), backoff.next()).unref();
        }
      }
    })();
    return out;
  }

  function addWaiter(id: string, waiter: (outcome: TaskOutcome) => void): void {
    let set = waiters.get(id);
    if (set === undefined) {
      set = new Set();
      waiters.set(id, set);
    }
    set.add(waiter);
  }

  /**
   * Queues one submit on the session; calls made in the same tick go out
   * together, in messages within the count and size caps (batcher.ts).
   */
  function submitOne(item: SubmitItem, outcome?: (outcome: TaskOutcome) => void): Promise<Submitted> {
    const ref = nextRef++;
    const submit = {
      ref,
      wantResult: outcome !== undefined,
      request: { type: item.type, input: item.input, options: toTaskOptions(withTraceContext(item.options)) as TaskOptions | undefined },
    };
    const oversized = oversizedSubmit(submit, options.maxMessageBytes);
    if (oversized !== undefined) return Promise.reject(oversized);
    const promise = new Promise<Submitted>((resolve, reject) => pending.set(ref, { resolve, reject, ...(outcome ? { outcome } : {}) }));
    session().push({ submits: [submit] });
    return promise;
  }

  function removeWaiter(id: string, waiter: (outcome: TaskOutcome) => void): void {
    const set = waiters.get(id);
    set?.delete(waiter);
    if (set?.size === 0) waiters.delete(id);
  }

  /**
   * Waits for a task's outcome: `listen` registers the waiter (and asks the
   * server for the outcome if it must); an abort of `signal` removes it.
   */
  function awaitOutcome(id: string, signal: AbortSignal | undefined, listen: (done: (outcome: TaskOutcome) => void) => void): Promise<TaskOutcome> {
    return new Promise<TaskOutcome>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        removeWaiter(id, done);
        reject(signal!.reason);
      };
      const done = (outcome: TaskOutcome) => {
        signal?.removeEventListener('abort', onAbort);
        // The server answers a follow of an unknown id with an UNSPECIFIED outcome carrying the error.
        if (outcome.state === TaskState.TASK_STATE_UNSPECIFIED && outcome.error !== undefined) {
          reject(new TaskwireError(codeOf(outcome.error.code), outcome.error.message));
        } else {
          resolve(outcome);
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      listen(done);
    });
  }

  /**
   * Submits asking for the outcome in the submit itself (as `run` does) and
   * resolves once it is committed, with a wait for that outcome: the typed
   * `call()` has the id (to cancel the task when its caller gives up)
   * without the round trip of a separate follow.
   */
  async function start(type: string, input: Any, submitOptions?: SubmitOptions): Promise<StartedTask> {
    // The outcome can come in the very message that acks the submit: kept until asked for.
    let arrived: TaskOutcome | undefined;
    const keep = (outcome: TaskOutcome) => void (arrived = outcome);
    const { id, existing } = await submitOne({ type, input, ...(submitOptions ? { options: submitOptions } : {}) }, keep);
    return {
      id,
      existing,
      outcome: (signal) =>
        awaitOutcome(id, signal, (done) => {
          if (arrived !== undefined) return done(arrived);
          // Waits in place of `keep` (still registered, and re-followed after a reconnect), so an abort removes it.
          removeWaiter(id, keep);
          addWaiter(id, done);
        }),
    };
  }

  function submitMany(items: readonly SubmitItem[]): Promise<Submitted[]> {
    return Promise.all(items.map((item) => submitOne(item)));
  }

  const client: TaskwireClient = {
    submit(type, input, submitOptions) {
      return submitOne({ type, input, ...(submitOptions ? { options: submitOptions } : {}) });
    },
    submitMany,
    run(type, input, submitOptions) {
      return new Promise<TaskOutcome>((resolve, reject) => {
        submitOne({ type, input, ...(submitOptions ? { options: submitOptions } : {}) }, resolve).catch(reject);
      });
    },
    async get(id) {
      return (await rpc.getTask({ id })).task!;
    },
    async *watch(id, watchOptions = {}) {
      for await (const response of rpc.watchTask({ id }, watchOptions.signal ? { signal: watchOptions.signal } : {})) {
        yield response.event;
      }
    },
    result(id, resultOptions = {}) {
      return awaitOutcome(id, resultOptions.signal, (done) => {
        addWaiter(id, done);
        session().push({ follow: [id] });
      });
    },
    async cancel(id, reason = '') {
      return (await rpc.cancelTask({ id, reason })).task!;
    },
    async retry(id) {
      return (await rpc.retryTask({ id })).task!;
    },
    async retryMatching(request) {
      return rpc.retryTasks(request);
    },
    async cancelMatching(request) {
      return rpc.cancelTasks(request);
    },
    async list(filter = {}) {
      const response = await rpc.listTasks(filter);
      return { tasks: response.tasks, nextPageToken: response.nextPageToken };
    },
    async workers() {
      return (await rpc.listWorkers({})).workers;
    },
    async stats(queue = '') {
      return (await rpc.getQueueStats({ queue })).queues;
    },
    schedules: scheduleClient(channel, options.token),
    async pauseQueue(queue) {
      return (await rpc.pauseQueue({ queue })).changed;
    },
    async resumeQueue(queue) {
      return (await rpc.resumeQueue({ queue })).changed;
    },
    async deleteTask(id) {
      await rpc.deleteTask({ id });
    },
    async purgeQueue(queue, { states = [], finishedBefore } = {}) {
      return (await rpc.purgeQueue({ queue, states: [...states], ...(finishedBefore === undefined ? {} : { finishedBefore }) })).deleted;
    },
    service(definition) {
      return serviceClient({ submit: client.submit, result: client.result, watch: client.watch, cancel: client.cancel, start }, definition);
    },
    close() {
      closeController.abort();
      stream?.end();
      channel.close();
    },
  };
  return client;
}
