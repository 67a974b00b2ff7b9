import { pino } from 'pino';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { WorkerServiceDefinition } from '../../gen/ts/taskwire/v1/worker_service.js';
import { createBroker, type Broker, type BrokerOptions, type TaskTypeInfo } from '../broker/index.js';
import { createGateway } from './gateway.js';
import { createRpcServer, withExactMessages, type RpcServer, type RpcServerOptions } from '../rpc/index.js';
import { createSqliteStore, type Store } from '../store/index.js';
import { createTaskService } from './task-service.js';
import { taskTypesOf, type TaskServiceDefinition as TaskServiceDef, type TaskServiceOptions } from './task-types.js';
import { createWorkerService } from './worker-service.js';

export interface TaskwireServerOptions extends RpcServerOptions, Omit<BrokerOptions, 'store' | 'logger'> {
  /** A store to use; otherwise a SQLite file at `dbPath`. */
  readonly store?: Store;
  /** SQLite database file. Default ./data/taskwire.db. */
  readonly dbPath?: string;
  /** Tell each worker to drain and reconnect after this long, so streams rebalance over replicas. */
  readonly maxSessionAgeMs?: number;
  /** SQLite durability: FULL (default) survives power loss, NORMAL only a process crash. */
  readonly sqliteSynchronous?: 'FULL' | 'NORMAL';
}

export interface TaskwireServer {
  readonly broker: Broker;
  readonly rpc: RpcServer;
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
  /** Drain workers, finish calls within the grace period, close the store. */
  shutdown(): Promise<void>;
}

export function createTaskwireServer(options: TaskwireServerOptions = {}): TaskwireServer {
  const logger = options.logger ?? pino({ name: 'taskwire', level: process.env.TASKWIRE_LOG_LEVEL ?? 'info' });
  const store =
    options.store ??
    createSqliteStore({ path: options.dbPath ?? 'data/taskwire.db', synchronous: options.sqliteSynchronous ?? 'FULL' });
  const broker = createBroker({ ...options, store, logger });
  const rpc = createRpcServer({
    ...options,
    logger,
    onDrain: () => {
      broker.drain();
      options.onDrain?.();
    },
  });
  rpc.add(withExactMessages(TaskServiceDefinition, ['session']), createTaskService(broker));
  rpc.add(
    withExactMessages(WorkerServiceDefinition, ['connect']),
    createWorkerService(broker, {
      graceMs: rpc.shutdownGraceMs,
      ...(options.maxSessionAgeMs === undefined ? {} : { maxSessionAgeMs: options.maxSessionAgeMs }),
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
    broker,
    rpc,
    addTaskService(definition, serviceOptions) {
      server.addTaskTypes(taskTypesOf(definition, serviceOptions));
    },
    addTaskTypes(types) {
      for (const info of types) broker.registerType(info);
      const gateway = createGateway(broker, types);
      rpc.add(gateway.definition, gateway.implementation as never);
    },
    listen: (address) => rpc.listen(address),
    shutdown() {
      stopping ??= (async () => {
        await rpc.shutdown(); // tells workers to drain (onDrain), then closes
        stopWatchingWrites();
        await broker.close();
      })();
      return stopping;
    },
  };
  return server;
}
