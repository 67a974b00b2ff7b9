import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killAll, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';

/**
 * The curl examples of README's "From anything that speaks HTTP", run as
 * they are written against a real `taskwire server --http-listen` and a demo
 * worker (child processes). Only the address changes: 127.0.0.1:8080 becomes
 * the test server's port. Each example's answer must match the JSON block
 * after it ("…" matches any value; objects may have more fields).
 */
const run = promisify(execFile);

function examples(): Array<{ command: string; expected: unknown }> {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('## From anything that speaks HTTP');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/```(sh|json)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]!.trim() }));
  const out: Array<{ command: string; expected: unknown }> = [];
  blocks.forEach((block, i) => {
    if (block.lang !== 'sh') return;
    const next = blocks[i + 1];
    if (next?.lang !== 'json') throw new Error(`README example "${block.body}" has no JSON answer after it`);
    out.push({ command: block.body, expected: JSON.parse(next.body) });
  });
  return out;
}

/** `actual` has every field of `expected` with the same value; "…" matches anything. */
function matches(actual: unknown, expected: unknown, path = '$'): string[] {
  if (expected === '…') return actual === undefined ? [`${path} is missing`] : [];
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path}: expected ${expected.length} items, got ${JSON.stringify(actual)}`];
    return expected.flatMap((e, i) => matches(actual[i], e, `${path}[${i}]`));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null) return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    return Object.entries(expected).flatMap(([k, v]) => matches((actual as Record<string, unknown>)[k], v, `${path}.${k}`));
  }
  return actual === expected ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

let dir: string;
const procs: Proc[] = [];
let httpAddress: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-readme-'));
  const server = await startServerProcess(join(dir, 'tasks.db'), '127.0.0.1:0', ['--http-listen', '127.0.0.1:0']);
  procs.push(server.proc);
  const http = await server.proc.waitForLine((l) => l.msg === 'HTTP listening (Connect, gRPC-Web)');
  httpAddress = `127.0.0.1:${http.port as number}`;
  const worker = startWorkerProcess(server.address, 'readme-worker');
  procs.push(worker);
  await worker.waitForLine((l) => l.msg === 'connected');
}, 30_000);

afterAll(async () => {
  await killAll(procs);
  rmSync(dir, { recursive: true, force: true });
});

it('has curl examples, each with its answer', () => {
  expect(examples().length).toBeGreaterThanOrEqual(5);
  for (const { command } of examples()) expect(command).toMatch(/^curl .*http:\/\/127\.0\.0\.1:8080\//s);
});

it('runs every curl example of the README as written, and gets the answer it shows', async () => {
  for (const { command, expected } of examples()) {
    const { stdout } = await run('bash', ['-c', command.replaceAll('127.0.0.1:8080', httpAddress)], { timeout: 15_000 });
    const problems = matches(JSON.parse(stdout), expected);
    expect(problems, `${command}\n→ ${stdout}`).toEqual([]);
  }
}, 60_000);
