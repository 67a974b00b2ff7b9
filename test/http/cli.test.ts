import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startCli } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'taskwire-http-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `taskwire server` with bad HTTP settings: it must exit non-zero, naming the flag. */
async function refused(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const proc = startCli(['server', '--listen', '127.0.0.1:0', '--db', join(dir, 'tasks.db'), ...args], env);
  const code = await proc.exited;
  return { code, output: proc.lines.map((l) => l.msg).join('\n') };
}

it('refuses a bad --http-listen, naming the flag', async () => {
  const { code, output } = await refused(['--http-listen', 'localhost']);
  expect(code).not.toBe(0);
  expect(output).toMatch(/option '--http-listen <address>' argument 'localhost' is invalid\. the HTTP listen address "localhost" must be host:port/);
});

it('reads TASKWIRE_HTTP_LISTEN and refuses a bad origin in TASKWIRE_HTTP_CORS_ORIGINS', async () => {
  const { code, output } = await refused([], { TASKWIRE_HTTP_LISTEN: '127.0.0.1:0', TASKWIRE_HTTP_CORS_ORIGINS: 'https://ok.example, app.example.com/path' });
  expect(code).not.toBe(0);
  expect(output).toMatch(/option '--http-cors-origins <origins>' value .* from env 'TASKWIRE_HTTP_CORS_ORIGINS' is invalid\. "app\.example\.com\/path" is not an origin/);
});

it('refuses CORS origins without an HTTP listener', async () => {
  const { code, output } = await refused(['--http-cors-origins', 'https://app.example.com']);
  expect(code).not.toBe(0);
  expect(output).toMatch(/--http-cors-origins needs --http-listen/);
});
