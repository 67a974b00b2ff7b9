import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { HealthDefinition, HealthServiceImpl } from 'nice-grpc-server-health';
import { pino } from 'pino';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { WorkerServiceDefinition } from '../../gen/ts/taskwire/v1/worker_service.js';
import { ScheduleServiceDefinition } from '../../gen/ts/taskwire/v1/schedule_service.js';
import { createScheduleService } from './schedule-service.js';
import { createBroker, type BrokerCounters, type Cleaner, type BrokerOptions, type TaskTypeInfo, type WorkerSnapshot } from '../broker/index.js';
import { createGateway } from './gateway.js';
import { createHttpListener, createRegistry, type HttpListener, type HttpService } from '../http/index.js';
import { createRpcServer, DEFAULT_MAX_MESSAGE_BYTES, withExactMessages, type RpcServerOptions } from '../rpc/index.js';
import { createSqliteStore, type Store } from '../store/index.js';
import { createMetricsRegistry, listenForScrapes, registerServerMetrics, type MetricsListener } from '../metrics/index.js';
import type { Registry } from 'prom-client';
import { createTaskService } from './task-service.js';
import { taskTypesOf, type TaskServiceDefinition as TaskServiceDef, type TaskServiceOptions } from './task-types.js';
import { createWorkerService } from './worker-service.js';

export interface TaskwireServerOptions extends RpcServerOptions, Omit<BrokerOptions, 'store' | 'logger'> {
  /** A store to use, which the caller owns and closes; otherwise a SQLite file at `dbPath`, closed by shutdown(). */
  readonly store?: Store;
  /** SQLite database file. Default ./data/taskwire.db. */
  readonly dbPath?: string;
  /** Tell each worker to drain and reconnect after this long, so streams rebalance over replicas. */
  readonly maxSessionAgeMs?: number;
  /** SQLite durability: FULL (default) survives power loss, NORMAL only a process crash. */
  readonly sqliteSynchronous?: 'FULL' | 'NORMAL';
  /** A worker's Connect stream that has not said Hello by then is closed. Default 10 s. */
  readonly helloTimeoutMs?: number;
  /**
   * Also serve over HTTP on this address ("127.0.0.1:8080"): the Connect
   * protocol (JSON and binary) and gRPC-Web, for TaskService (but Session),
   * every task service's gateway and health. Same auth, TLS and limits.
   */
  readonly httpListen?: string;
  /** Browser origins allowed to call the HTTP listener (CORS); "*" for any. Default none. */
  readonly httpCorsOrigins?: readonly string[];
  /** Serve the web dashboard at `/` on the HTTP listener (default true). */
  readonly dashboard?: boolean;
  /** Serve Prometheus metrics at GET /metrics on this address ("127.0.0.1:9464"). Default off. */
  readonly metricsListen?: string;
  /** Register the server's metrics in this registry (an application's own); one is made for `metricsListen` otherwise. */
  readonly metricsRegistry?: Registry;
}

export interface TaskwireServer {
  /** What this server did since it started: stale and refused results, leases expired, workers lost… */
  readonly counters: Readonly<BrokerCounters>;
  /** The workers connected to this server now. */
  workers(): WorkerSnapshot[];
  /** False while the store cannot be written (health NOT_SERVING) and once shutdown begins. */
  readonly serving: boolean;
  /** This server's name among the replicas sharing its store (WorkerInfo.replica). */
  readonly replica: string;
  /** The retention cleaner of this server (undefined when turned off): what it deleted, and a wait for its next round to end. */
  readonly cleaner: Cleaner | undefined;
  /**
   * Makes each method of a generated service definition a task type named by
   * its full method path, with optional defaults per service and per method.
   */
  addTaskService<D extends TaskServiceDef>(definition: D, options?: TaskServiceOptions<Extract<keyof D['methods'], string>>): void;
  /**
   * Registers task types of one service from any source (a descriptor set,
   * say), and serves them through the gateway. Call before listen().
   */
  addTaskTypes(types: readonly TaskTypeInfo[]): void;
  listen(address: string): Promise<number>;
  /** The HTTP listener's bound port once listen() has started it (with `httpListen`). */
  readonly httpPort: number | undefined;
  /** The metrics listener's bound port once listen() has started it (with `metricsListen`). */
  readonly metricsPort: number | undefined;
  /** Drain workers, finish calls within the grace period, close the store it opened. */
  shutdown(): Promise<void>;
}

export function createTaskwireServer(options: TaskwireServerOptions = {}): TaskwireServer {
  const logger = options.logger ?? pino({ name: 'taskwire', level: process.env.TASKWIRE_LOG_LEVEL ?? 'info' });
  const store =
    options.store ??
    createSqliteStore({ path: options.dbPath ?? 'data/taskwire.db', synchronous: options.sqliteSynchronous ?? 'FULL' });
  const broker = createBroker({ ...options, store, logger });
  const registry = options.metricsRegistry ?? (options.metricsListen === undefined ? undefined : createMetricsRegistry());
  const metrics = registry === undefined ? undefined : registerServerMetrics(registry, broker, store);
  let metricsListener: MetricsListener | undefined;
  const rpc = createRpcServer({
    ...options,
    logger,
    ...(metrics === undefined ? {} : { observeCall: metrics.observeCall }),
    onDrain: () => {
      broker.drain();
      options.onDrain?.();
    },
  });
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const taskService = createTaskService(broker, { maxMessageBytes });
  rpc.add(withExactMessages(TaskServiceDefinition, ['session']), taskService);
  // What the HTTP listener serves: the very implementations gRPC runs.
  const scheduleService = createScheduleService(broker);
  rpc.add(ScheduleServiceDefinition, scheduleService);
  const httpServices: HttpService[] = [
    { definition: TaskServiceDefinition, implementation: taskService },
    { definition: ScheduleServiceDefinition, implementation: scheduleService },
    { definition: HealthDefinition, implementation: { check: HealthServiceImpl(rpc.health).check } },
  ];
  let http: HttpListener | undefined;
  let httpPort: number | undefined;
  rpc.add(
    withExactMessages(WorkerServiceDefinition, ['connect']),
    createWorkerService(broker, {
      graceMs: rpc.shutdownGraceMs,
      ...(options.maxSessionAgeMs === undefined ? {} : { maxSessionAgeMs: options.maxSessionAgeMs }),
      ...(options.helloTimeoutMs === undefined ? {} : { helloTimeoutMs: options.helloTimeoutMs }),
    }),
  );

  // Health follows the store: NOT_SERVING while writes fail (a full disk), SERVING once one succeeds.
  let unwritable = false;
  const stopWatchingWrites = store.onWriteHealth((failure) => {
    rpc.setServing(failure === undefined);
    if (failure !== undefined) logger.error({ reason: failure.message }, 'the store cannot be written: health NOT_SERVING until a write succeeds');
    else if (unwritable) logger.info('the store takes writes again: health SERVING');
    unwritable = failure !== undefined;
  });

  let stopping: Promise<void> | undefined;
  const server: TaskwireServer = {
    counters: broker.counters,
    workers: () => broker.workers(),
    cleaner: broker.cleaner,
    replica: broker.replica,
    get serving() {
      return !unwritable && stopping === undefined;
    },
    addTaskService(definition, serviceOptions) {
      server.addTaskTypes(taskTypesOf(definition, serviceOptions));
    },
    addTaskTypes(types) {
      for (const info of types) broker.registerType(info);
      const gateway = createGateway(broker, types);
      rpc.addUnary(gateway.definition, gateway.implementation);
      httpServices.push({ definition: gateway.definition, implementation: gateway.implementation });
    },
    async listen(address) {
      // The queue counts start from one count of the store and then follow every commit's events:
      // a submit through this server committed while that count runs would be counted twice.
      await broker.queues.ready;
      if (options.httpListen !== undefined) {
        const sets = options.descriptorSet === undefined ? [] : [typeof options.descriptorSet === 'string' ? readFileSync(options.descriptorSet) : options.descriptorSet];
        http = createHttpListener({
          logger,
          draining: rpc.draining,
          registry: createRegistry(sets),
          services: httpServices,
          maxMessageBytes,
          ...(metrics === undefined ? {} : { observeCall: metrics.observeCall }),
          ...(options.auth === undefined ? {} : { auth: options.auth }),
          ...(options.tls === undefined ? {} : { tls: options.tls }),
          ...(options.httpCorsOrigins === undefined ? {} : { corsOrigins: options.httpCorsOrigins }),
          ...(options.dashboard === undefined ? {} : { dashboard: options.dashboard }),
        });
      }
      const port = await rpc.listen(address);
      broker.startScheduler(); // task types are registered by now: a schedule due at start can fire
      if (http !== undefined && options.httpListen !== undefined) {
        const httpListen = options.httpListen;
        httpPort = await http.listen(httpListen).catch((error: unknown) => {
          const reason = error instanceof Error ? error.message : String(error);
          const inUse = /EADDRINUSE/.test(reason) ? 'the port is in use; ' : '';
          throw new Error(`cannot listen on ${httpListen} (the HTTP listener): ${inUse}${reason}; give --http-listen another address`);
        });
      }
      if (registry !== undefined && options.metricsListen !== undefined) {
        metricsListener = await listenForScrapes(options.metricsListen, registry);
        logger.info({ address: options.metricsListen, port: metricsListener.port }, 'serving metrics at /metrics');
      }
      return port;
    },
    get httpPort() {
      return httpPort;
    },
    get metricsPort() {
      return metricsListener?.port;
    },
    shutdown() {
      stopping ??= (async () => {
        const closed = rpc.shutdown(); // tells workers to drain (onDrain), then closes
        if (http !== undefined) {
          // HTTP calls end as gRPC ones do: when draining begins (after the drain delay).
          if (!rpc.draining.aborted) await once(rpc.draining, 'abort');
          await http.close(rpc.shutdownGraceMs);
        }
        await closed;
        stopWatchingWrites();
        metrics?.close();
        await metricsListener?.close();
        await broker.close();
        if (options.store === undefined) await store.close();
      })();
      return stopping;
    },
  };
  return server;
}
