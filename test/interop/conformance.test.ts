import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runConformance } from '../../conformance/kit.js';

const root = resolve(import.meta.dirname, '../..');

/** The conformance kit (docs/PROTOCOL.md) against the Python example worker, which knows nothing of our code. */
describe('worker protocol conformance', () => {
  it('the Python example worker passes every check', async () => {
    const results = await runConformance({
      worker: `PYTHONPATH=${root}/gen/python:${root}/examples/python PYTHONUNBUFFERED=1 /usr/bin/python3 ${root}/examples/python/worker.py`,
    });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results).toHaveLength(8);
  }, 120_000);
});
