import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConformance } from '../../conformance/kit.js';
import { buildGoModule, type GoModule } from './go-module.js';
import { installPythonPackage, type PythonPackage } from './python-package.js';

const root = resolve(import.meta.dirname, '../..');

let py: PythonPackage;
let go: GoModule;
beforeAll(async () => {
  [py, go] = await Promise.all([installPythonPackage(), buildGoModule()]);
}, 300_000);
afterAll(() => {
  py?.dispose();
  go?.dispose();
});

/** The conformance kit (docs/PROTOCOL.md) against workers that know nothing of our TypeScript code. */
describe('worker protocol conformance', () => {
  it('the Python package’s worker (examples/python/worker.py) passes every check', async () => {
    const results = await runConformance({
      worker: `PYTHONPATH=${root}/gen/python PYTHONUNBUFFERED=1 ${py.python} ${root}/examples/python/worker.py`,
    });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results).toHaveLength(8);
  }, 120_000);

  it('the Go module’s worker (go/examples/worker) passes every check', async () => {
    const results = await runConformance({ worker: go.worker });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results).toHaveLength(8);
  }, 120_000);
});
