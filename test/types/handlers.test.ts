import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

describe('typed worker handlers', () => {
  it('reject a wrong return type, a missing handler and a misread input at compile time', async () => {
    const config = join(root, 'test/types/tsconfig.fail.json');
    const result = await promisify(execFile)(join(root, 'node_modules/.bin/tsc'), ['-p', config], { cwd: root }).then(
      () => ({ code: 0, output: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, output: error.stdout }),
    );
    expect(result.code).not.toBe(0);
    const errors = result.output.split('\n').filter((line) => line.includes('wrong-handler.ts'));
    expect(errors.some((line) => /wrong-handler\.ts\(9,/.test(line) && /number/.test(line))).toBe(true);
    expect(errors.some((line) => /wrong-handler\.ts\(21,/.test(line) && /'fail' is missing/.test(line))).toBe(true);
    expect(errors.some((line) => /wrong-handler\.ts\(36,/.test(line) && /'text' does not exist/.test(line))).toBe(true);
    expect(errors).toHaveLength(3);
  });
});
