/**
 * The README's tutorial, run as written: its code blocks are taken from the
 * README, the files written into a fresh directory outside the repository,
 * its commands run there (the package installed from `npm pack` of this
 * repository, as the README says), then the compiled server, worker and
 * client run against each other. Two liberties, both for time and isolation:
 * better-sqlite3 comes from this repository's node_modules instead of being
 * compiled again (about 80 s), and the port is a free one instead of 50051.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NPM_ENV, REPO, packTaskwire, sh } from '../helpers/package.js';
import { killAll, Proc, type LogLine } from '../helpers/processes.js';

interface Block {
  readonly lang: string;
  readonly text: string;
  /** The file a block is, from its first line (`// worker.ts`, `# buf.yaml`); undefined for commands. */
  readonly path: string | undefined;
}

/** The fenced code blocks of one README section, in order. */
export function tutorialBlocks(readme: string, heading: string): Block[] {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`no "## ${heading}" section in the README`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => {
    const text = m[2]!;
    const first = /^(?:\/\/|#)\s*([\w./-]+\.\w+)\s*$/.exec(text.split('\n')[0]!);
    return { lang: m[1]!, text, path: m[1] === 'sh' ? undefined : first?.[1] };
  });
}

/** The command lines of a sh block, comments stripped. */
const commands = (block: Block) =>
  block.text
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

/** A process's exit code, or a failure if it does not exit within `ms`. */
function exitWithin(proc: Proc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    proc.exited.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running after ${ms} ms: ${JSON.stringify(proc.lines.slice(-5))}`)), ms))),
  ]);
}

/** Waits for a line, failing at once with the process's last words if it exits first. */
async function lineOf(proc: Proc, match: (line: LogLine) => boolean, ms: number): Promise<void> {
  const exited = proc.exited.then((code) => {
    throw new Error(`exited with ${code} first: ${JSON.stringify(proc.lines.slice(-8))}`);
  });
  exited.catch(() => undefined);
  await Promise.race([proc.waitForLine(match, ms), exited]);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const parent = mkdtempSync(join(tmpdir(), 'taskwire-readme-'));
const procs: Proc[] = [];

afterAll(async () => {
  await killAll(procs);
  rmSync(parent, { recursive: true, force: true });
});

describe('the README tutorial', () => {
  it('has every file it uses and says how to run it', () => {
    const blocks = tutorialBlocks(readFileSync(join(REPO, 'README.md'), 'utf8'), 'Five-minute tutorial');
    const files = blocks.flatMap((b) => (b.path === undefined ? [] : [b.path]));
    expect(files).toEqual(
      expect.arrayContaining(['proto/acme/v1/thumbnails.proto', 'buf.yaml', 'buf.gen.yaml', 'worker.ts', 'server.ts', 'client.ts', 'tsconfig.json']),
    );
    const lines = blocks.filter((b) => b.lang === 'sh').flatMap(commands);
    expect(lines).toEqual(expect.arrayContaining(['npx tsc', 'node dist/server.js', 'node dist/worker.js', 'node dist/client.js']));
  });

  it('runs as written in a fresh directory: install, generate, compile, serve, work, submit', { timeout: 180_000 }, async () => {
    const blocks = tutorialBlocks(readFileSync(join(REPO, 'README.md'), 'utf8'), 'Five-minute tutorial');
    const [install, ...rest] = blocks.filter((b) => b.lang === 'sh');
    // The README installs ../taskwire/taskwire-0.1.0.tgz from inside the new project: put the tarball there.
    const tarball = await packTaskwire(join(parent, 'taskwire'));
    const installLines = commands(install!);
    expect(installLines.join('\n')).toContain(`../taskwire/${tarball.split('/').pop()}`);
    expect(installLines.join('\n')).toMatch(/ better-sqlite3\b/);
    // better-sqlite3 as this repository built it, copied in (with what it loads at run time) rather than compiled again.
    const withoutSqlite = installLines.map((line) => (line.startsWith('npm install ') ? line.replace(/ better-sqlite3\b/, '') : line));
    await sh(withoutSqlite.join(' && '), parent, 150_000);
    const app = join(parent, 'thumbnails');
    for (const name of ['better-sqlite3', 'bindings', 'file-uri-to-path']) {
      cpSync(join(REPO, 'node_modules', name), join(app, 'node_modules', name), { recursive: true });
    }

    const port = await freePort();
    for (const block of blocks) {
      if (block.path === undefined) continue;
      mkdirSync(dirname(join(app, block.path)), { recursive: true });
      writeFileSync(join(app, block.path), block.path.endsWith('.ts') ? block.text.replaceAll('127.0.0.1:50051', `127.0.0.1:${port}`) : block.text);
    }

    const programs: string[] = [];
    for (const block of rest) {
      for (const line of commands(block)) {
        if (line.startsWith('node ')) programs.push(line.slice('node '.length));
        else await sh(line, app, 60_000);
      }
    }
    expect(programs).toEqual(['dist/server.js', 'dist/worker.js', 'dist/client.js']);

    const run = (script: string) => {
      const proc = new Proc(spawn(process.execPath, [script], { cwd: app, env: NPM_ENV, stdio: ['ignore', 'pipe', 'pipe'] }));
      procs.push(proc);
      return proc;
    };
    const server = run(programs[0]!);
    await lineOf(server, (l) => l.msg === 'listening', 20_000);
    const worker = run(programs[1]!);
    await lineOf(worker, (l) => l.msg === 'worker connected', 20_000);
    const client = run(programs[2]!);
    await lineOf(client, (l) => typeof l.msg === 'string' && l.msg.includes('dog.png'), 20_000);
    expect(await exitWithin(client, 10_000)).toBe(0); // client.close() lets the process end
    const said = client.lines.map((l) => l.msg);
    expect(said).toEqual(expect.arrayContaining(['SUCCEEDED https://example.com/cat.png', 'resized: https://example.com/cat.png?width=200', 'resized: https://example.com/dog.png?width=100']));

    // SIGTERM as docker stop sends it: both end cleanly.
    worker.signal('SIGTERM');
    expect(await exitWithin(worker, 10_000)).toBe(0);
    server.signal('SIGTERM');
    expect(await exitWithin(server, 15_000)).toBe(0);
  });
});
