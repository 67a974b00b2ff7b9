import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createPostgresStore, createSqliteStore, type Store } from '../../src/store/index.js';

export const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Drops a PostgreSQL schema a test made. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
}

/**
 * A new store in a temporary SQLite file or PostgreSQL schema named after
 * `prefix`; `onCleanup` is handed what removes the file or schema (run it
 * after whatever uses the store has closed).
 */
export async function openTestStore(kind: 'sqlite' | 'postgres', prefix: string, onCleanup: (cleanup: () => Promise<void>) => void): Promise<Store> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `taskwire-${prefix}-`));
    onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
    return createSqliteStore({ path: join(dir, 'tasks.db') });
  }
  const schema = `${prefix}_${process.pid}_${Date.now()}`;
  onCleanup(() => dropSchema(schema));
  return createPostgresStore({ connectionString: POSTGRES_URL, schema });
}
