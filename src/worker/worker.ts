import { hostname } from 'node:os';
import { connectivityState } from '@grpc/grpc-js';
import { isAbortError } from 'abort-controller-x';
import { pino, type Logger } from 'pino';
import {
  ProtocolVersion,
  WorkerServiceDefinition,
  type Assignment,
  type ConnectRequest,
  type ConnectResponse,
} from '../../gen/ts/taskwire/v1/worker_service.js';
import { Code, codeOf } from '../errors.js';
import {
  createRpcChannel,
  createRpcClient,
  Outbox,
  ReconnectBackoff,
  withExactMessages,
  type RpcChannelOptions,
} from '../rpc/index.js';
import { ClientError } from 'nice-grpc';
import type { Registry } from 'prom-client';
import { context as otelContext, SpanStatusCode } from '@opentelemetry/api';
import { createMetricsRegistry, listenForScrapes, registerWorkerMetrics, startAttemptSpan, traceIdOf, type MetricsListener } from '../metrics/index.js';
import { PACKAGE_VERSION } from '../version.js';
import { WORKER_REQUEST_LIMITS } from './batches.js';
import { TaskError, WorkerRefusedError } from './errors.js';
import { attemptKey, mergeMessages, typeUrl, type MessageType, type ServiceDefinition } from '../contract.js';
import type { TaskContext, TaskHandlers } from './types.js';
import { setLongTimeout } from '../timers.js';

export interface WorkerOptions extends RpcChannelOptions {
  /** Server address: host:port, or dns:///name:port for round-robin over several. */
  readonly server: string;
  /** Tasks run at once. Default 4. */
  readonly concurrency?: number;
  /** Stable id of this worker. Default host-pid. */
  readonly workerId?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly token?: string;
  readonly logger?: Logger;
  /** How long stop() lets running tasks finish before handing them back. Default 30 s. */
  readonly shutdownGraceMs?: number;
  /** Reconnect backoff bounds, of this loop and of the channel's own. Default 100 ms .. 5 s. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** Serve Prometheus metrics at GET /metrics on this address ("127.0.0.1:9465") while started. Default off. */
  readonly metricsListen?: string;
  /** Register the worker's metrics in this registry (an application's own); one is made for `metricsListen` otherwise. */
  readonly metricsRegistry?: Registry;
}

export interface Worker {
  readonly workerId: string;
  /** Serves every method of a generated service definition. */
  implement<D extends ServiceDefinition>(definition: D, handlers: TaskHandlers<D>): Worker;
  /**
   * Connects and keeps reconnecting until stop(). Resolves once the first
   * session is welcomed; rejects with a WorkerRefusedError if the server
   * turns the worker away (bad slots or token, a protocol it does not speak).
   */
  start(): Promise<void>;
  /**
   * Settles when the worker has stopped: resolves after stop(), rejects with
   * a WorkerRefusedError if the server refused it (at start or on a later
   * reconnect). A process that runs only a worker awaits it to exit non-zero.
   */
  readonly done: Promise<void>;
  /** Takes nothing new, lets running tasks finish within the grace period, hands back the rest, disconnects. */
  stop(): Promise<void>;
  /** Tasks running now. */
  readonly running: number;
  readonly connected: boolean;
  /** The metrics listener's bound port once start() has opened it (with `metricsListen`). */
  readonly metricsPort: number | undefined;
}

interface Registered {
  readonly inputTypeUrl: string | undefined;
  readonly outputTypeUrl: string;
  readonly requestType: MessageType<unknown>;
  readonly responseType: MessageType<unknown>;
  readonly handler: (input: never, ctx: TaskContext) => unknown;
}

/**
 * One attempt this worker runs. Its AbortController is made only if the
 * handler asks for the signal: most handlers of short tasks never do.
 */
class Attempt {
  #controller: AbortController | undefined;
  /** Why the attempt was aborted, if it was. */
  abortReason: unknown;
  aborted = false;
  /** The server ended this attempt (cancel, timeout, lost lease): its result is not wanted. */
  cancelled = false;
  /** Stopping: hand the attempt back instead of reporting a result. */
  released = false;

  constructor(readonly assignment: Assignment) {}

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.#controller?.abort(reason);
  }
}

type Outgoing = Partial<ConnectRequest>;

/** One complete ConnectRequest from the queued items (the stream skips fromPartial); progress coalesced per attempt. */
function mergeOutgoing(messages: Outgoing[]): ConnectRequest {
  const merged = mergeMessages(emptyRequest, messages);
  if (merged.progress.length > 1) {
    merged.progress = [...new Map(merged.progress.map((p) => [attemptKey(p.taskId, p.attempt), p])).values()];
  }
  return merged;
}

const emptyRequest = (): ConnectRequest => ({ hello: undefined, credit: 0, completes: [], fails: [], progress: [], releases: [], heartbeat: false });

/** Most slots a worker may declare: the server's default limit. */
export const MAX_CONCURRENCY = 10_000;

/** Answers to Hello that reconnecting cannot change: the worker stops instead of retrying forever. */
const REFUSALS: ReadonlySet<number> = new Set([
  Code.INVALID_ARGUMENT,
  Code.FAILED_PRECONDITION,
  Code.UNAUTHENTICATED,
  Code.PERMISSION_DENIED,
  Code.UNIMPLEMENTED,
]);

export function createWorker(options: WorkerOptions): Worker {
  const workerId = options.workerId ?? `${hostname()}-${process.pid}`;
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new RangeError(`concurrency must be an integer in 1..${MAX_CONCURRENCY}; got ${concurrency}`);
  }
  const logger = (options.logger ?? pino({ name: 'taskwire-worker' })).child({ workerId });
  const graceMs = options.shutdownGraceMs ?? 30_000;
  const registry = new Map<string, Registered>();
  const running = new Map<string, Attempt>();
  /** Results sent but not yet acknowledged: sent again on the next session if the stream dies. */
  const unacknowledged = new Map<string, Outgoing>();
  const channel = createRpcChannel(options.server, options);
  const client = createRpcClient(withExactMessages(WorkerServiceDefinition, ['connect']), channel, options.token === undefined ? {} : { token: options.token });
  const stopController = new AbortController();

  let outbox: Outbox<Outgoing, ConnectRequest> | undefined;
  let connected = false;
  let draining = false;
  let loop: Promise<void> | undefined;
  let started: Promise<void> | undefined;
  let idle: (() => void) | undefined;
  const metricsRegistry = options.metricsRegistry ?? (options.metricsListen === undefined ? undefined : createMetricsRegistry());
  const metrics =
    metricsRegistry === undefined ? undefined : registerWorkerMetrics(metricsRegistry, () => ({ total: concurrency, busy: running.size }));
  let metricsListener: MetricsListener | undefined;

  /** The credit a finished attempt gives back: none once stopping or draining. */
  const slotBack = () => (stopController.signal.aborted || draining ? 0 : 1);

  function send(message: Outgoing): void {
    if (outbox !== undefined && connected) outbox.push(message);
  }

  async function runTask(assignment: Assignment): Promise<void> {
    const entry = new Attempt(assignment);
    const id = attemptKey(assignment.taskId, assignment.attempt);
    running.set(id, entry);
    const startedAt = metrics === undefined ? 0 : performance.now();
    const ref = { taskId: assignment.taskId, attempt: assignment.attempt };
    const traced = startAttemptSpan(assignment.metadata, assignment);
    // The attempt span's trace (a retry's is its own); without an SDK, the trace the task was submitted in.
    const traceId = traced?.span.spanContext().traceId ?? traceIdOf(assignment.metadata);
    // A child logger per task costs more than an echo task itself: make it when first used.
    let taskLog: Logger | undefined;
    const log = () =>
      (taskLog ??= logger.child({
        task_id: assignment.taskId,
        attempt: assignment.attempt,
        type: assignment.type,
        ...(traceId === undefined ? {} : { trace_id: traceId }),
      }));
    const cancelTimer =
      assignment.deadline === undefined
        ? undefined
        : setLongTimeout(() => entry.abort(new TaskError('execution timeout', { code: Code.DEADLINE_EXCEEDED })), assignment.deadline.getTime() - Date.now());
    let result: Outgoing | undefined;
    try {
      const registered = registry.get(assignment.type);
      if (registered === undefined) {
        throw new TaskError(`this worker has no handler for ${assignment.type}`, { code: Code.UNIMPLEMENTED });
      }
      const expected = registered.inputTypeUrl;
      const input = assignment.input;
      if (input === undefined || (expected !== undefined && input.typeUrl !== expected)) {
        throw new TaskError(`input has type "${input?.typeUrl}" but ${assignment.type} takes "${expected}"`, {
          code: Code.INVALID_ARGUMENT,
          retryable: false,
        });
      }
      const ctx: TaskContext = {
        taskId: assignment.taskId,
        attempt: assignment.attempt,
        maxAttempts: assignment.maxAttempts,
        type: assignment.type,
        queue: assignment.queue,
        deadline: assignment.deadline,
        get signal() {
          return entry.signal;
        },
        metadata: assignment.metadata,
        get log() {
          return log();
        },
        progress(percent, message = '') {
          if (entry.cancelled || entry.released) return;
          send({ progress: [{ taskId: ref.taskId, attempt: ref.attempt, percent, message }] });
        },
      };
      const decoded = registered.requestType.decode(input.value) as never;
      const output = await (traced === undefined
        ? registered.handler(decoded, ctx)
        : otelContext.with(traced.context, () => registered.handler(decoded, ctx)));
      const value = registered.responseType.encode(registered.responseType.fromPartial(output as never)).finish();
      if (!entry.cancelled && !entry.released) {
        result = { completes: [{ taskId: ref.taskId, attempt: ref.attempt, output: { typeUrl: registered.outputTypeUrl, value: value as Buffer } }] };
      }
    } catch (error) {
      if (entry.released) {
        result = { releases: [ref] };
      } else if (!entry.cancelled) {
        const failure = entry.abortReason instanceof TaskError ? entry.abortReason : error;
        const message = failure instanceof Error ? failure.message : String(failure);
        const code = failure instanceof TaskError ? failure.code : isAbortError(failure) ? Code.CANCELLED : Code.UNKNOWN;
        const retryable = failure instanceof TaskError ? failure.retryable : true;
        if (failure instanceof TaskError || isAbortError(failure)) log().info({ code, retryable, reason: message }, 'task failed');
        else log().warn({ err: failure }, 'task failed with an unexpected error');
        result = { fails: [{ taskId: ref.taskId, attempt: ref.attempt, message, code, retryable }] };
      }
    } finally {
      cancelTimer?.();
      running.delete(id);
    }
    if (traced !== undefined) {
      const failure = result?.fails?.[0];
      if (failure !== undefined) {
        traced.span.recordException({ name: 'TaskError', message: failure.message, code: failure.code });
        traced.span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
      }
      traced.span.setAttribute('taskwire.task.outcome', entry.released ? 'released' : entry.cancelled ? 'cancelled' : failure ? 'failed' : 'succeeded');
      traced.span.end();
    }
    if (metrics !== undefined) {
      const outcome = entry.released ? 'released' : entry.cancelled ? 'cancelled' : result?.completes !== undefined ? 'succeeded' : 'failed';
      metrics.attemptEnded(assignment.type, outcome, (performance.now() - startedAt) / 1000);
    }
    // The result (kept until acknowledged) and the freed slot go out together.
    const credit = slotBack();
    if (result !== undefined) unacknowledged.set(id, result);
    if (result !== undefined || credit > 0) send(credit > 0 ? { ...result, credit } : result!);
    if (running.size === 0) {
      idle?.();
      if (draining) outbox?.end();
    }
  }

  function handle(response: ConnectResponse): void {
    for (const assignment of response.assignments) void runTask(assignment);
    for (const cancel of response.cancels) {
      const entry = running.get(attemptKey(cancel.taskId, cancel.attempt));
      if (entry === undefined) continue;
      entry.cancelled = true;
      entry.abort(new TaskError(cancel.reason || 'cancelled', { code: Code.CANCELLED }));
    }
    for (const ref of response.acknowledged) unacknowledged.delete(attemptKey(ref.taskId, ref.attempt));
    const rejections =
      response.rejections.length > 0 ? response.rejections : response.rejected.map((r) => ({ ...r, reason: 'the attempt is no longer current' }));
    for (const rejected of rejections) {
      logger.warn({ task_id: rejected.taskId, attempt: rejected.attempt, reason: rejected.reason }, 'the server refused a result');
    }
    if (response.drain !== undefined && !draining) {
      logger.info('server is draining: finishing running tasks, then reconnecting');
      draining = true;
      if (running.size === 0) outbox?.end();
    }
  }

  async function session(onWelcome: () => void): Promise<void> {
    draining = false;
    const out = new Outbox<Outgoing, ConnectRequest>(mergeOutgoing, WORKER_REQUEST_LIMITS);
    const resume = [...new Set([...running.keys(), ...unacknowledged.keys()])].map((k) => {
      const [taskId, attempt] = k.split('#');
      return { taskId: taskId!, attempt: Number(attempt) };
    });
    out.push({
      hello: {
        workerId,
        taskTypes: [...registry.keys()],
        slots: concurrency,
        labels: { ...options.labels },
        version: PACKAGE_VERSION,
        protocol: ProtocolVersion.PROTOCOL_VERSION_1,
        resume,
      },
    });
    const abort = new AbortController();
    const onStop = () => {
      if (running.size === 0) out.end();
    };
    stopController.signal.addEventListener('abort', onStop);
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      for await (const response of client.connect(out, { signal: abort.signal })) {
        if (response.welcome !== undefined) {
          outbox = out;
          connected = true;
          // Results not acknowledged on an earlier stream go out again; the server applies those whose
          // attempt is still current and rejects (and counts) the rest. Each gives its slot back: the
          // new session counted a resumed attempt as holding one (the server clamps credit to the
          // slots not held, so a result for an attempt it refused to resume grants nothing extra).
          const kept = response.welcome.resumed.length;
          const credit = slotBack();
          for (const message of unacknowledged.values()) out.push(credit > 0 ? { ...message, credit } : message);
          const intervalMs = (response.welcome.heartbeatInterval?.seconds ?? 10) * 1000 +
            Math.round((response.welcome.heartbeatInterval?.nanos ?? 0) / 1e6);
          heartbeat = setInterval(() => out.push({ heartbeat: true }), Math.max(50, intervalMs));
          logger.info({ sessionId: response.welcome.sessionId, resumed: kept }, 'connected');
          onWelcome();
          if (stopController.signal.aborted) onStop();
        }
        handle(response);
      }
    } finally {
      clearInterval(heartbeat);
      stopController.signal.removeEventListener('abort', onStop);
      connected = false;
      outbox = undefined;
      abort.abort();
    }
  }

  async function run(onWelcome: () => void): Promise<void> {
    const backoff = new ReconnectBackoff(options.reconnectMinMs, options.reconnectMaxMs);
    let sessions = 0;
    while (!stopController.signal.aborted) {
      let welcomed = false;
      try {
        await session(() => {
          welcomed = true;
          if (sessions++ > 0) metrics?.reconnected();
          backoff.reset();
          onWelcome();
        });
      } catch (error) {
        if (stopController.signal.aborted) break;
        if (error instanceof ClientError && REFUSALS.has(error.code)) {
          const refused = new WorkerRefusedError(codeOf(error.code), error.details);
          logger.error({ code: error.code, reason: error.details }, 'the server refused this worker; stopping');
          stopController.abort();
          channel.close();
          throw refused;
        }
        logger.warn({ err: error instanceof Error ? error.message : error }, 'disconnected');
      }
      if (stopController.signal.aborted) break;
      if (welcomed && !draining) backoff.reset();
      await reconnectDelay(backoff.next());
    }
  }

  /**
   * Waits `ms`, or less: a channel in TRANSIENT_FAILURE fails every call at
   * once until its own backoff (rpc/options.ts) tries the server again, so
   * the next attempt goes out as soon as the channel leaves that state.
   */
  function reconnectDelay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopController.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopController.signal.addEventListener('abort', done);
      const state = channel.getConnectivityState(false);
      if (state === connectivityState.TRANSIENT_FAILURE) channel.watchConnectivityState(state, Date.now() + ms, done);
    });
  }

  const worker: Worker = {
    workerId,
    get running() {
      return running.size;
    },
    get connected() {
      return connected;
    },
    get metricsPort() {
      return metricsListener?.port;
    },
    implement(definition, handlers) {
      for (const [name, method] of Object.entries(definition.methods)) {
        const handler = (handlers as Record<string, Registered['handler']>)[name];
        if (typeof handler !== 'function') throw new Error(`no handler for ${definition.fullName}/${method.name}`);
        registry.set(`/${definition.fullName}/${method.name}`, {
          inputTypeUrl: method.requestType.$type === undefined ? undefined : typeUrl(method.requestType.$type),
          outputTypeUrl: method.responseType.$type === undefined ? '' : typeUrl(method.responseType.$type),
          requestType: method.requestType,
          responseType: method.responseType,
          handler,
        });
      }
      return worker;
    },
    start() {
      if (registry.size === 0) return Promise.reject(new Error('implement at least one task service before start()'));
      started ??= (async () => {
        if (metricsRegistry !== undefined && options.metricsListen !== undefined) {
          metricsListener = await listenForScrapes(options.metricsListen, metricsRegistry);
          logger.info({ address: options.metricsListen, port: metricsListener.port }, 'serving metrics at /metrics');
        }
      })().then(() => new Promise<void>((resolve, reject) => {
        loop = run(resolve);
        loop.catch(() => undefined); // a refusal reaches the caller through start() and done
        loop.then(resolve, reject);
      }));
      return started;
    },
    get done() {
      return loop ?? Promise.resolve();
    },
    async stop() {
      if (stopController.signal.aborted) return loop?.catch(() => undefined);
      logger.info({ running: running.size, graceMs }, 'stopping');
      stopController.abort();
      if (running.size > 0) {
        const allDone = new Promise<void>((resolve) => (idle = resolve));
        const timer = setTimeout(() => {
          // Out of time: hand what still runs back to the server, redelivered at once.
          for (const entry of running.values()) {
            entry.released = true;
            entry.abort(new TaskError('the worker is shutting down', { code: Code.UNAVAILABLE }));
          }
        }, graceMs);
        await allDone;
        clearTimeout(timer);
      }
      outbox?.end();
      await loop?.catch(() => undefined);
      channel.close();
      await metricsListener?.close();
    },
  };
  return worker;
}
