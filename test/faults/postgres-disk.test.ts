import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Code, TaskwireError } from '../../src/errors.js';
import { createPostgresStore, type Store } from '../../src/store/index.js';
import { newTask } from '../store/conformance.js';

/**
 * PostgreSQL out of disk, for real: the store's tasks table moved to a
 * tablespace on a small tmpfs this test mounts (and unmounts), most of it
 * taken by a filler file; inserts then fail with 53100 disk_full until the
 * filler goes.
 */
const POSTGRES_URL = process.env.TASKWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `t_disk_${process.pid}`;
const tablespace = `tw_disk_${process.pid}`;
let disk: string | undefined;
let store: Store | undefined;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

afterEach(async () => {
  await store?.close();
  store = undefined;
  await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin(`DROP TABLESPACE IF EXISTS ${tablespace}`);
  if (disk !== undefined) {
    execFileSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  }
  disk = undefined;
});

describe('postgres on a full disk', () => {
  it('fails inserts with RESOURCE_EXHAUSTED saying the disk is full, reports it, and recovers once there is room', async () => {
    disk = mkdtempSync(join(tmpdir(), 'taskwire-pgdisk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', disk]);
    const location = join(disk, 'tablespace');
    mkdirSync(location);
    const postgres = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    chownSync(location, postgres, postgres);
    const filler = join(disk, 'filler');
    writeFileSync(filler, Buffer.alloc(3 * 1024 * 1024));
    await admin(`CREATE TABLESPACE ${tablespace} LOCATION '${location}'`);
    store = await createPostgresStore({ connectionString: POSTGRES_URL, schema });
    await admin(`ALTER TABLE ${schema}.tasks SET TABLESPACE ${tablespace}`);
    const health: Array<string | undefined> = [];
    store.onWriteHealth((failure) => health.push(failure?.message));

    const input = { typeUrl: 'type.googleapis.com/demo.v1.EchoRequest', value: Buffer.alloc(1_000, 1) };
    let inserted = 0;
    let refusal: unknown;
    // Bounded: 4 MiB of tmpfs holds far fewer than 100 batches of 100 rows of 1 kB.
    for (let batch = 0; batch < 100 && refusal === undefined; batch++) {
      await store.insert(Array.from({ length: 100 }, () => newTask({ input }))).then(
        (results) => (inserted += results.length),
        (error: unknown) => (refusal = error),
      );
    }
    expect(inserted).toBeGreaterThan(0);
    expect(refusal).toBeInstanceOf(TaskwireError);
    expect((refusal as TaskwireError).code).toBe(Code.RESOURCE_EXHAUSTED);
    expect((refusal as TaskwireError).message).toMatch(/^the disk is full: the PostgreSQL database \(its server reported 53100 disk_full\)/);
    expect(health).toEqual([(refusal as TaskwireError).message]);

    rmSync(filler);
    const freed = Date.now();
    expect(await store.insert([newTask({ input })])).toHaveLength(1);
    const recoveredMs = Date.now() - freed;
    expect(health).toEqual([(refusal as TaskwireError).message, undefined]);
    console.log(`postgres disk full: ${inserted} tasks inserted before 53100; the first insert after space was freed committed in ${recoveredMs} ms`);
  });
});
