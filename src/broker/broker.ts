import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { attemptKey } from '../contract.js';
import { Code, invalidArgument, notFound, resourceExhausted, TaskwireError, unavailable } from '../errors.js';
import {
  isTerminal,
  type InsertResult,
  type KeyCounts,
  type ListFilter,
  type ListPage,
  type NewTask,
  type TaskEnd,
  type Store,
  type TaskEvent,
  type TaskQuery,
  type TaskRecord,
  type Retention,
} from '../store/index.js';
import { Dispatcher } from './dispatcher.js';
import { RateLimiter, rateLimitProblem, startRateShares } from './rate-limits.js';
import { startSweeper } from './sweeper.js';
import { watchTask, type WatchEvent } from './watch.js';
import { newTaskId } from './ids.js';
import { WorkerSession } from './session.js';
import { connectWorker, type WorkerConnection } from './connection.js';
import { TaskSubscriptions } from './subscriptions.js';
import type { SubmitRequest, TaskTypeInfo, WorkerHello, WorkerSink, WorkerSnapshot, WorkerWelcome } from './types.js';
import { DEFAULT_RETENTION, resolveRetention, resolveSubmit } from './validate.js';
import { startCleaner, type Cleaner } from './cleaner.js';
import { checkHello } from './hello.js';
import { QueueStats, type QueueStatsRecord } from './queue-stats.js';
import { startSubmitSpans } from './spans.js';
import { createQueueControls, type PurgeOptions } from './queue-controls.js';
import { createWorkerDirectory } from './worker-directory.js';
import { bulkAction, type BulkOptions, type BulkResult } from './bulk.js';
import { Scheduler } from './scheduler.js';
import { createSchedules, type Schedules } from './schedules.js';

export interface BrokerOptions {
  readonly store: Store;
  readonly logger?: Logger;
  /** How long a lease lives without a heartbeat. Default 30 s. */
  readonly leaseMs?: number;
  /** How often workers must send something. Default leaseMs / 3. */
  readonly heartbeatMs?: number;
  /** How often timers (run_at, retries, timeouts, leases) are checked. Default 200 ms. */
  readonly sweepMs?: number;
  /** Largest batch of assignments sent at once. Default 256. */
  readonly maxAssignBatch?: number;
  /** Most slots a worker may declare. Default 10,000. */
  readonly maxSlots?: number;
  /** Most tasks waiting (SCHEDULED or QUEUED) before submits are refused with RESOURCE_EXHAUSTED. Default 10,000,000. */
  readonly maxWaitingTasks?: number;
  /** Most WatchTask streams open at once. Default 10,000. */
  readonly maxWatchers?: number;
  /** This server among replicas sharing a store, shown with its workers. Default: the host name and a random suffix. */
  readonly replica?: string;
  /** How long finished tasks are kept, by end state (a type's defaults win); 0 keeps forever. Default 24 h, 7 d, 24 h. */
  readonly retention?: Partial<Retention>;
  /** Run the cleaner that deletes tasks past their retention. Default true. */
  readonly cleaner?: boolean;
}


export interface Broker {
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** Registers a task type (its method path, message types and defaults). */
  registerType(info: TaskTypeInfo): void;
  types(): ReadonlyMap<string, TaskTypeInfo>;
  /** Validates and commits; resolves after the commit. All or nothing: one invalid request fails the batch. */
  submit(requests: readonly SubmitRequest[]): Promise<Submitted[]>;
  /** Validates each request on its own; commits the valid ones together; returns a result or an error per request. */
  submitEach(requests: readonly SubmitRequest[]): Promise<Array<Submitted | TaskwireError>>;
  get(id: string): Promise<TaskRecord>;
  list(filter: ListFilter, pageSize: number, cursor: string | undefined): Promise<ListPage>;
  /** Counts per queue kept in memory (see QueueStats), with oldest waiting age and recent rates. */
  stats(queue: string | undefined): Promise<QueueStatsRecord[]>;
  /** Concurrency keys with tasks waiting, read from the store. */
  waitingKeys(queue: string | undefined): Promise<KeyCounts[]>;
  /** The maintained counts themselves, for gauges. */
  readonly queues: QueueStats;
  /** The cleaner of this replica (undefined when turned off), for metrics and tests. */
  readonly cleaner: Cleaner | undefined;
  /** WatchTask streams open now. */
  watching(): number;
  cancel(id: string, reason: string): Promise<TaskRecord>;
  retry(id: string): Promise<TaskRecord>;
  /** RetryTask for every FAILED or CANCELLED task matching `query` (bounded, batched; see bulk.ts). */
  retryMatching(query: TaskQuery, options: BulkOptions): Promise<BulkResult>;
  /** CancelTask for every SCHEDULED, QUEUED or RUNNING task matching `query`. */
  cancelMatching(query: TaskQuery, options: BulkOptions & { readonly reason: string }): Promise<BulkResult>;
  /** The task now, then each committed change and progress report, until terminal or aborted. */
  watch(id: string, signal: AbortSignal): AsyncIterable<WatchEvent>;
  /**
   * Calls `listener` once with the task's terminal event (on the next microtask if it already
   * is terminal; never before returning).
   * `known`: the task as just committed, which saves reading it. Without it the task is read
   * once; if there is no such task, or the read fails, `missing` is called with why, and
   * `listener` never is.
   */
  onOutcome(id: string, listener: (outcome: TaskEnd | TaskRecord) => void, options?: OutcomeOptions): () => void;
  openSession(hello: WorkerHello, sink: WorkerSink): Promise<{ session: WorkerConnection; welcome: WorkerWelcome }>;
  /** This server's worker sessions. */
  workers(): WorkerSnapshot[];
  /** Every server's worker sessions: this one's, and other replicas' on a shared store. */
  allWorkers(): Promise<WorkerSnapshot[]>;
  /** This server among replicas. */
  readonly replica: string;
  /** Pauses a queue on every server sharing the store; false when it was paused already. */
  pauseQueue(queue: string): Promise<boolean>;
  /** Resumes a queue; false when it was not paused. */
  resumeQueue(queue: string): Promise<boolean>;
  /** Deletes a finished task; returns it as it was. */
  deleteTask(id: string): Promise<TaskRecord>;
  /** Deletes a queue's finished tasks in bounded batches; returns how many. */
  purgeQueue(options: PurgeOptions): Promise<number>;
  /** Counters for tests and metrics. */
  readonly counters: BrokerCounters;
  /** Schedules: create, change, read (admin). */
  readonly schedules: Schedules;
  /** Start firing schedules (the server calls it once its task types are registered). */
  startScheduler(): void;
  /** Stop handing out work; sessions keep their leases so workers can resume them elsewhere. */
  drain(): void;
  /** Stops dispatch, the sweeper and event handling. The store is the caller's: it stays open. */
  close(): Promise<void>;
}

/** What this replica did, counted since it started. */
export interface BrokerCounters {
  /** Results, releases or resumes for an attempt that is no longer current. */
  staleResults: number;
  /** Results refused for other reasons (not the holder, an invalid output). */
  refusedResults: number;
  completed: number;
  failed: number;
  /** Leases that ran out with no server renewing them (attempts handed back). */
  leasesExpired: number;
  /** Attempts failed because their worker's stream closed or went silent. */
  workersLost: number;
  /** Attempts failed for running past their execution timeout. */
  timedOut: number;
}

export interface OutcomeOptions {
  /** The caller's own submit of the task: how it stood when its insert committed. */
  readonly submitted?: Submitted;
  readonly missing?: (error: unknown) => void;
}

/** A submit's answer: the task as inserted, and how it ended if it ended in the same commit. */
export interface Submitted extends InsertResult {
  /**
   * The task ended in its insert's commit: it was sent to its worker before
   * that commit (Dispatcher.insert), and the result was written with it.
   */
  readonly ended?: TaskEnd;
}

export function createBroker(options: BrokerOptions): Broker {
  const { store } = options;
  const logger = options.logger ?? pino({ name: 'taskwire-broker' });
  const leaseMs = options.leaseMs ?? 30_000;
  const heartbeatMs = options.heartbeatMs ?? Math.max(100, Math.floor(leaseMs / 3));
  const sweepMs = options.sweepMs ?? 200;
  const maxSlots = options.maxSlots ?? 10_000;
  const maxWaiting = options.maxWaitingTasks ?? 10_000_000;
  const maxWatchers = options.maxWatchers ?? 10_000;
  let watchers = 0;
  /** Tasks SCHEDULED or QUEUED, from the store's count at start and every event since (all replicas'). */
  let waiting = 0;
  const isWaiting = (state: TaskState) => state === TaskState.TASK_STATE_SCHEDULED || state === TaskState.TASK_STATE_QUEUED;
  store.countByState().then(
    (counts) => {
      waiting += (counts[TaskState.TASK_STATE_SCHEDULED] ?? 0) + (counts[TaskState.TASK_STATE_QUEUED] ?? 0);
    },
    // The limit then counts from zero: submits are refused later than they should be, never wrongly.
    (error: unknown) => logger.error({ err: error }, 'could not count the waiting tasks at start; maxWaitingTasks counts from 0'),
  );
  const types = new Map<string, TaskTypeInfo>();
  const serverRetention = resolveRetention(DEFAULT_RETENTION, options.retention, 'the server');
  /** Each type's retention, resolved once at registration. */
  const retentions = new Map<string, Retention>();
  const retentionOf = (info: TaskTypeInfo) => retentions.get(info.type) ?? serverRetention;
  const sessions = new Map<string, WorkerSession>();
  const subscriptions = new TaskSubscriptions();
  const counters: BrokerCounters = { staleResults: 0, refusedResults: 0, completed: 0, failed: 0, leasesExpired: 0, workersLost: 0, timedOut: 0 };
  const queues = new QueueStats(store);
  const rates = new RateLimiter();
  const dispatcher = new Dispatcher({ store, logger, leaseMs, maxBatch: options.maxAssignBatch ?? 256, rates });
  const controls = createQueueControls({ store, queues, dispatcher, logger });
  const replica = options.replica ?? `${hostname()}-${randomUUID().slice(0, 8)}`;
  const directory = createWorkerDirectory({ replica, sessions, shared: store.workers, logger });
  // Replicas split each rate limit by how many of them serve the type (rate-limits.ts says why).
  const stopRateShares = store.workers === undefined ? () => undefined : startRateShares(rates, () => types.keys(), () => directory.list());
  let draining = false;
  let closed = false;
  const scheduler = new Scheduler({ store, logger, types, retentionOf });

  /** Tasks whose insert is being committed → how they ended, if that same commit ended them (Submitted.ended). */
  const inserting = new Map<string, TaskEnd | undefined>();

  const unsubscribe = store.subscribe((events) => {
    queues.apply(events);
    for (const event of events) {
      if (inserting.size > 0 && isTerminal(event.state) && inserting.has(event.id)) inserting.set(event.id, event);
      if (event.progress === undefined) waiting += Number(isWaiting(event.state)) - Number(isWaiting(event.previous));
      // A keyed task that ended may let the next of its key run. A paused queue's task is not ready:
      // claims skip it, and each one it woke would be a claim that finds nothing.
      const queued = event.state === TaskState.TASK_STATE_QUEUED && !controls.isPaused(event.queue);
      if (queued || (event.concurrencyKey !== undefined && event.progress === undefined)) dispatcher.markReady(event.type);
      if (event.previous === TaskState.TASK_STATE_RUNNING && event.state !== TaskState.TASK_STATE_RUNNING) {
        cancelLocalAttempt(event);
      }
      if (event.state === TaskState.TASK_STATE_SUCCEEDED) counters.completed++;
      else if (event.state === TaskState.TASK_STATE_FAILED) counters.failed++;
      subscriptions.deliver(event);
    }
  });

  /**
   * An attempt ended. If a local worker still holds it, the end did not come
   * from that worker (cancel, timeout, lost lease): tell it to stop.
   */
  function cancelLocalAttempt(event: TaskEvent): void {
    if (event.owner === undefined) return;
    const session = sessions.get(event.owner);
    if (session === undefined || !session.endLease(event.id, event.attempt)) return;
    const reason =
      event.state === TaskState.TASK_STATE_CANCELLED
        ? 'cancelled'
        : (event.error?.message ?? 'the attempt is no longer current');
    session.cancel([{ id: event.id, attempt: event.attempt, reason }]);
  }

  const unsubscribeDeletions = store.onDeleted((deletions) => queues.delete(deletions));
  const cleaner: Cleaner | undefined = options.cleaner === false ? undefined : startCleaner({ store, logger });

  const stopSweeper = startSweeper({
    store,
    logger,
    dispatcher,
    sessions,
    counters,
    leaseMs,
    sweepMs,
    dropSession: (session, why) => dropSession(session, why),
  });

  /** A worker is gone: its attempts fail (and retry) unless we are draining, when they wait to be resumed. */
  async function dropSession(session: WorkerSession, why: string): Promise<void> {
    if (!session.close()) return;
    sessions.delete(session.id);
    dispatcher.remove(session);
    directory.disconnected(session);
    const held = session.held();
    if (held.length === 0 || draining) return;
    for (const lease of held) session.endLease(lease.id, lease.attempt);
    // An attempt sent before its task's insert committed is failed the same way: the store
    // applies writes in order, so this runs after the insert (and finds nothing if it failed).
    const failing = store.fail(
      held.map(({ id, attempt }) => ({
        id,
        attempt,
        message: `worker ${session.hello.workerId} lost: ${why}`,
        code: Code.UNAVAILABLE,
        retryable: true,
        workerId: session.hello.workerId,
      })),
      Date.now(),
    );
    for (const lease of held) lease.early?.ending(false);
    const results = await failing;
    counters.workersLost += results.filter((result) => result.applied).length;
  }

  /** Inserts tasks, a task due now leased straight to a free worker in the same write (see Dispatcher.insert). */
  async function insertDispatching(tasks: NewTask[]): Promise<Submitted[]> {
    const spans = startSubmitSpans(tasks);
    // The commit's events are published before its writes' promises settle: a task that ended in
    // its insert's commit (its result shared it) is caught here, or no follow made after would see it.
    for (const task of tasks) inserting.set(task.id, undefined);
    try {
      // A paused queue's task waits QUEUED: only a claim (which skips paused queues) may take it later.
      const results: Submitted[] = await dispatcher.insert(
        tasks,
        (leased) => spans.commit(() => store.insert(leased)),
        (task) => controls.mayDispatchDirectly(task.options.queue),
      );
      spans.end();
      return results.map((result) => {
        const ended = inserting.get(result.task.id);
        return ended === undefined ? result : { ...result, ended };
      });
    } catch (error) {
      spans.end(error);
      throw error;
    } finally {
      for (const task of tasks) inserting.delete(task.id);
    }
  }

  /** Counts a watch stream while it runs, for the watcher limit. */
  async function* counted(stream: AsyncGenerator<WatchEvent>): AsyncGenerator<WatchEvent> {
    watchers++;
    try {
      yield* stream;
    } finally {
      watchers--;
    }
  }

  function checkOpen(): void {
    if (closed) throw unavailable('the server is shutting down; retry against another server');
  }

  function checkRoom(count: number): void {
    if (waiting + count > maxWaiting) {
      throw resourceExhausted(`${waiting} tasks are waiting, the most this server accepts is ${maxWaiting}: retry later, or add workers`);
    }
  }

  function requireId(id: string): void {
    if (id === '') throw invalidArgument('id is required: the task id returned by SubmitTask');
  }

  async function get(id: string): Promise<TaskRecord> {
    requireId(id);
    const task = await store.get(id);
    if (task === undefined) throw notFound(`no task with id "${id}"`);
    return task;
  }

  return {
    leaseMs,
    heartbeatMs,
    counters,
    queues,
    cleaner,
    watching: () => watchers,

    registerType(info) {
      const problem = info.rateLimit === undefined ? undefined : rateLimitProblem(info.rateLimit, info.type);
      if (problem !== undefined) throw new Error(problem);
      rates.set(info.type, info.rateLimit);
      retentions.set(info.type, resolveRetention(serverRetention, info.defaults?.retention, info.type));
      types.set(info.type, info);
    },

    types: () => types,

    async submit(requests) {
      checkOpen();
      checkRoom(requests.length);
      const now = Date.now();
      const tasks = requests.map((request, index) => {
        try {
          return resolveSubmit(request, types, newTaskId(now), now, retentionOf);
        } catch (error) {
          if (requests.length > 1 && error instanceof Error) error.message = `tasks[${index}]: ${error.message}`;
          throw error;
        }
      });
      return insertDispatching(tasks);
    },

    async submitEach(requests) {
      checkOpen();
      checkRoom(requests.length);
      const now = Date.now();
      const results: Array<Submitted | TaskwireError> = new Array(requests.length);
      const valid: NewTask[] = [];
      const slots: number[] = [];
      requests.forEach((request, index) => {
        try {
          valid.push(resolveSubmit(request, types, newTaskId(now), now, retentionOf));
          slots.push(index);
        } catch (error) {
          if (!(error instanceof TaskwireError)) throw error;
          results[index] = error;
        }
      });
      if (valid.length > 0) {
        // A store that cannot commit (a full disk) fails these submits, not the stream that carried them.
        const inserted = await insertDispatching(valid).catch((error: unknown) => {
          if (!(error instanceof TaskwireError)) logger.error({ err: error }, 'failed to commit submits');
          const failure =
            error instanceof TaskwireError ? error : unavailable('the task store could not commit the submit (see the server log); retry');
          return valid.map(() => failure);
        });
        inserted.forEach((result, i) => (results[slots[i]!] = result));
      }
      return results;
    },

    get,

    list(filter, pageSize, cursor) {
      return store.list(filter, pageSize, cursor);
    },

    async stats(queue) {
      await controls.ready;
      return queues.stats(queue);
    },

    waitingKeys(queue) {
      return store.waitingKeys(queue);
    },

    async cancel(id, reason) {
      requireId(id);
      return store.cancel(id, reason || 'cancelled by a client', Date.now());
    },

    async retry(id) {
      requireId(id);
      return store.revive(id, Date.now());
    },

    retryMatching(query, options) {
      return bulkAction(store, 'revive', query, options, (id) => store.revive(id, Date.now()));
    },

    cancelMatching(query, options) {
      const reason = options.reason || 'cancelled by a client';
      return bulkAction(store, 'cancel', query, options, (id) => store.cancel(id, reason, Date.now()));
    },

    watch(id, signal) {
      if (watchers >= maxWatchers) {
        throw resourceExhausted(`${watchers} tasks are being watched, the most this server allows is ${maxWatchers}: retry later`);
      }
      return counted(watchTask(id, signal, subscriptions, get));
    },

    onOutcome(id, listener, { submitted, missing } = {}) {
      let done = false;
      /** Ends the subscription once, with whichever answer comes first. */
      const answerOnce = (answer: () => void) => {
        if (done) return;
        done = true;
        stop();
        answer();
      };
      const finish = (outcome: TaskEnd | TaskRecord) => answerOnce(() => listener(outcome));
      const fail = (error: unknown) => answerOnce(() => missing?.(error));
      const stop = subscriptions.add(id, (event) => {
        if (isTerminal(event.state)) finish(event);
      });
      // Events are published before the committing promise settles. A new task that ended in
      // its insert's commit says so (`ended`); any later end comes in a later commit, whose
      // events this subscription sees: a claim runs on a later turn, and only an attempt sent
      // before the insert committed can have its result in that commit. An existing task (an
      // idempotent resubmit) may have ended in that same commit, or on another replica since:
      // it is read again, as a task named by id is.
      // Never calls back before returning: callers name the returned stop in their listener.
      const known = submitted === undefined ? undefined : (submitted.ended ?? submitted.task);
      if (known !== undefined && isTerminal(known.state)) {
        queueMicrotask(() => finish(known));
      } else if (id === '') {
        queueMicrotask(() => fail(invalidArgument('a task id is required')));
      } else if (submitted === undefined || submitted.existing) {
        store.outcome(id).then((task) => {
          if (task === undefined) fail(notFound(`no task with id "${id}"`));
          else if (task !== 'live') finish(task);
        }, fail);
      }
      return () => {
        done = true;
        stop();
      };
    },

    async openSession(hello, sink) {
      checkOpen();
      if (draining) throw unavailable('the server is draining; connect to another server');
      checkHello(hello, types, maxSlots);
      // With tokens on, the identity includes the token's name: a worker presenting another
      // token cannot resume (take over) the attempts of a worker id it copied.
      if (hello.principal !== undefined) hello = { ...hello, workerId: `${hello.principal}/${hello.workerId}` };
      const id = randomUUID();
      const wanted = [...new Map(hello.resume.map((ref) => [attemptKey(ref.id, ref.attempt), ref])).values()];
      // The store hands over only attempts leased to this same worker identity.
      const resumed = wanted.length === 0 ? [] : await store.resume(id, hello.workerId, wanted, Date.now() + leaseMs);
      const session = new WorkerSession(id, hello, sink, resumed);
      const kept = new Set(resumed.map((ref) => attemptKey(ref.id, ref.attempt)));
      const refused = wanted.filter((ref) => !kept.has(attemptKey(ref.id, ref.attempt)));
      session.cancel(refused.map((ref) => ({ ...ref, reason: 'the attempt is no longer current, or is not leased to this worker' })));
      sessions.set(id, session);
      dispatcher.add(session);
      directory.connected(session);
      logger.info(
        { sessionId: id, workerId: hello.workerId, slots: hello.slots, resumed: resumed.length, refused: refused.length },
        'worker connected',
      );

      const connection = connectWorker(session, {
        store,
        logger,
        dispatcher,
        types,
        counters,
        closed: () => {
          logger.info({ sessionId: id, workerId: hello.workerId }, 'worker disconnected');
          void dropSession(session, 'its stream closed').catch((error: unknown) =>
            logger.error({ err: error }, 'failed to requeue the tasks of a closed session'),
          );
        },
      });
      return {
        session: connection,
        welcome: { sessionId: id, heartbeatMs, leaseMs, resumed },
      };
    },

    workers() {
      return [...sessions.values()].map((session) => ({ ...session.snapshot(), replica }));
    },

    schedules: createSchedules(store, types),

    startScheduler() {
      if (!draining) scheduler.start();
    },

    allWorkers: () => directory.list(),
    replica,
    pauseQueue: (queue) => controls.pause(queue),
    resumeQueue: (queue) => controls.resume(queue),
    deleteTask: (id) => controls.delete(id),
    purgeQueue: (purge) => controls.purge(purge),

    drain() {
      draining = true;
      scheduler.stop();
      dispatcher.pause();
      for (const session of sessions.values()) session.drain();
    },

    async close() {
      if (closed) return;
      closed = true;
      draining = true;
      scheduler.stop();
      dispatcher.pause();
      stopSweeper();
      stopRateShares();
      await cleaner?.stop();
      unsubscribe();
      controls.close();
      await directory.close();
      unsubscribeDeletions();
    },
  };
}
