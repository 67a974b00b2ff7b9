import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { PostgresStoreOptions } from './postgres/store.js';
import type { Store } from './types.js';

/**
 * The stores' drivers are optional peer dependencies: an app that only
 * submits tasks or runs workers never installs them. They load when a store
 * is made, and a missing one says what to install.
 */
const require = createRequire(import.meta.url);

const missing = (error: unknown) =>
  (error as { code?: string }).code === 'MODULE_NOT_FOUND' || (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND';

export function loadSqlite(): typeof BetterSqlite3 {
  try {
    return require('better-sqlite3') as typeof BetterSqlite3;
  } catch (error) {
    if (missing(error)) throw new Error('the SQLite store needs the better-sqlite3 package: npm install better-sqlite3');
    throw error;
  }
}

/** A PostgreSQL store; loads pg first. */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  let postgres: typeof import('./postgres/store.js');
  try {
    postgres = await import('./postgres/store.js');
  } catch (error) {
    if (missing(error)) throw new Error('the PostgreSQL store needs the pg package: npm install pg');
    throw error;
  }
  return postgres.createPostgresStore(options);
}
