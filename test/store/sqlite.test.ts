import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createSqliteStore } from '../../src/store/index.js';
import { describeStoreConformance } from './conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-store-'));
let n = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance('sqlite', async () => createSqliteStore({ path: join(dir, `store-${n++}.db`) }));
