import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresStore } from '../../src/store/index.js';
import { describeStoreConformance } from './conformance.js';

/** The machine's PostgreSQL (`.ci/services.sh` starts it); each run uses schemas of its own. */
export const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const prefix = `t_${process.pid}_${Date.now()}`;
const schemas: string[] = [];

afterAll(async () => {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describeStoreConformance('postgres', async () => {
  const schema = `${prefix}_${schemas.length}`;
  schemas.push(schema);
  return createPostgresStore({ connectionString: POSTGRES_URL, schema });
});

describe('postgres migrations', () => {
  it('let replicas that start together on a new schema all come up', async () => {
    const schema = `${prefix}_race`;
    schemas.push(schema);
    const stores = await Promise.all(Array.from({ length: 5 }, () => createPostgresStore({ connectionString: POSTGRES_URL, schema })));
    expect(stores).toHaveLength(5);
    await Promise.all(stores.map((store) => store.close()));
  });
});
