import { describe, expect, it } from 'vitest';
import { runConformance } from '../../conformance/kit.js';
import { CLI } from '../helpers/processes.js';

/** The conformance kit (docs/PROTOCOL.md) against our own worker, run as `taskwire worker --demo`. */
describe('worker protocol conformance', () => {
  it('the TypeScript worker passes every check', async () => {
    const results = await runConformance({ worker: `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} worker --demo --log-level warn` });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.name.split(':')[0])).toEqual(['hello', 'results', 'credit', 'heartbeats', 'cancel', 'restart', 'drain', 'SIGTERM']);
  }, 120_000);
});

describe('the kit reads a worker command as a shell would, for the simple cases', () => {
  it('splits words and quotes, and takes leading NAME=value as environment', async () => {
    const { parseCommand } = await import('../../conformance/kit.js');
    expect(parseCommand(`PYTHONPATH=a:b X='y z' /usr/bin/python3 "my worker.py" --slots 3`)).toEqual({
      env: { PYTHONPATH: 'a:b', X: 'y z' },
      argv: ['/usr/bin/python3', 'my worker.py', '--slots', '3'],
    });
    expect(() => parseCommand('A=1')).toThrow(/names no program/);
    expect(() => parseCommand('run "unclosed')).toThrow(/unbalanced "/);
  });
});
