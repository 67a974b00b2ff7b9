import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'taskwire-contract-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a command in the scratch copy; resolves with its exit code and output. */
async function sh(command: string, args: string[]) {
  const env = { ...process.env, PATH: `${join(work, 'node_modules/.bin')}:${process.env.PATH}` };
  try {
    const { stdout, stderr } = await run(command, args, { cwd: work, env });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe('changing a contract', () => {
  it('makes the typecheck fail until the new task handler exists', async () => {
    for (const entry of ['proto', 'gen', 'src', 'buf.yaml', 'buf.gen.yaml', 'tsconfig.json', 'tsconfig.build.json', 'package.json']) {
      cpSync(join(root, entry), join(work, entry), { recursive: true });
    }
    symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
    expect((await sh('npx', ['tsc', '--noEmit', '-p', 'tsconfig.build.json'])).code).toBe(0);

    const proto = join(work, 'proto/demo/v1/demo.proto');
    writeFileSync(
      proto,
      readFileSync(proto, 'utf8').replace(
        '  rpc Fail(FailRequest) returns (FailResponse);',
        '  rpc Fail(FailRequest) returns (FailResponse);\n  // Shouts.\n  rpc Shout(ShoutRequest) returns (ShoutResponse);',
      ),
    );
    appendFileSync(proto, '\nmessage ShoutRequest {\n  string text = 1;\n}\n\nmessage ShoutResponse {\n  string text = 1;\n}\n');
    const generated = await sh('npx', ['buf', 'generate']);
    expect(generated.code, generated.output).toBe(0);
    expect(readFileSync(join(work, 'gen/ts/demo/v1/demo.ts'), 'utf8')).toContain('ShoutRequest');

    const missing = await sh('npx', ['tsc', '--noEmit', '-p', 'tsconfig.build.json']);
    expect(missing.code).not.toBe(0);
    expect(missing.output).toMatch(/src\/demo\/handlers\.ts.*Property 'shout' is missing/s);

    const handlers = join(work, 'src/demo/handlers.ts');
    writeFileSync(
      handlers,
      readFileSync(handlers, 'utf8').replace(
        '    async fail(request, ctx) {',
        '    async shout(request) {\n      return { text: request.text.toUpperCase() };\n    },\n\n    async fail(request, ctx) {',
      ),
    );
    const fixed = await sh('npx', ['tsc', '--noEmit', '-p', 'tsconfig.build.json']);
    expect(fixed.code, fixed.output).toBe(0);
  }, 120_000); // buf generate and two typechecks of the whole source: ~15 s alone, several times that on a busy machine
});
