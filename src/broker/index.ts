export { createBroker, type Broker, type BrokerCounters, type BrokerOptions } from './broker.js';
export type { QueueStats, QueueStatsRecord } from './queue-stats.js';
export type { WorkerConnection } from './connection.js';
export type { WatchEvent } from './watch.js';
export { exponentialBackoff } from '../store/backoff.js';
export type * from './types.js';
export { DEFAULT_BACKOFF, DEFAULT_MAX_ATTEMPTS, LIMITS } from './validate.js';
export { BULK_LIMITS, type BulkOptions, type BulkResult } from './bulk.js';
