export type * from './types.js';
export { firstLease, leaseOf } from './inserts.js';
export { exponentialBackoff } from './backoff.js';
export { transitions, isTerminal, stateName, TERMINAL_STATES, type Transition } from './transitions.js';
export { createSqliteStore, type SqliteStoreOptions } from './sqlite/store.js';
export type { PostgresStoreOptions } from './postgres/store.js';
export { createPostgresStore } from './drivers.js';
export { statesOf } from './filter.js';
