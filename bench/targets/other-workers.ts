import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, Child, ROOT, freePort, startNode, waitForPort, type BenchParams, type Setup, type Target } from '../lib.js';
import { session } from './taskwire.js';

/**
 * The default taskwire target (SQLite, submits and results over the Session
 * stream) with its workers written in another language: the Python package's
 * example worker (asyncio, grpc.aio, Debian's python3) or the Go module's
 * (grpc-go 1.33, Debian's Go 1.19). Same server, same producer, same Echo.
 */
function withWorkers(start: (name: string, address: string, params: BenchParams) => Child): Target {
  return {
    async setup(params): Promise<Setup> {
      const dir = mkdtempSync(join(tmpdir(), 'taskwire-bench-'));
      const port = await freePort();
      const address = `127.0.0.1:${port}`;
      const server = startNode('server', [CLI, 'server', '--listen', address, '--db', join(dir, 'tasks.db'), '--log-level', 'warn', '--sync', process.env.BENCH_SQLITE_SYNC ?? 'full']);
      await waitForPort(port);
      const workers = Array.from({ length: params.workers }, (_, i) => start(`${i}`, address, params));
      return {
        children: [server, ...workers],
        info: { address, workers: params.workers },
        async teardown() {
          await Promise.all(workers.map((w) => w.stop()));
          await server.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    producer: session.producer,
  };
}

const cache = join(ROOT, '.bench');

/** python/ installed into .bench/python-venv (a venv over Debian's python3, no index), once per bench process. */
let python: string | undefined;
function pythonWithPackage(): string {
  if (python !== undefined) return python;
  const venv = join(cache, 'python-venv');
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  execFileSync('/usr/bin/python3', ['-m', 'venv', '--system-site-packages', venv]);
  const source = mkdtempSync(join(tmpdir(), 'taskwire-py-src-'));
  cpSync(join(ROOT, 'python'), source, { recursive: true, filter: (path) => !/(__pycache__|\.egg-info|\/build)$/.test(path) });
  execFileSync(join(venv, 'bin/pip'), ['install', '-q', '--no-build-isolation', '--no-index', source]);
  rmSync(source, { recursive: true, force: true });
  return (python = join(venv, 'bin/python'));
}

/** go/examples/worker built in GOPATH mode over Debian's packages into .bench/go-bin, once per bench process. */
let goWorker: string | undefined;
function goWorkerBinary(): string {
  if (goWorker !== undefined) return goWorker;
  const gopath = join(cache, 'gopath');
  const pkg = join(gopath, 'src/github.com/taskwire/taskwire/go');
  mkdirSync(join(pkg, '..'), { recursive: true });
  rmSync(pkg, { force: true }); // the link itself, which may point at another checkout
  symlinkSync(join(ROOT, 'go'), pkg);
  const bin = join(cache, 'go-bin');
  execFileSync('go', ['build', '-o', `${bin}/`, './examples/worker'], {
    cwd: pkg,
    env: { ...process.env, GO111MODULE: 'off', GOPATH: `${gopath}:/usr/share/gocode`, GOFLAGS: '' },
  });
  return (goWorker = join(bin, 'worker'));
}

export const pythonWorkers = withWorkers((i, address, params) =>
  new Child(`python-worker-${i}`, spawn(pythonWithPackage(), [join(ROOT, 'examples/python/worker.py'), '--server', address, '--slots', String(params.slots), '--worker-id', `py-${i}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONPATH: join(ROOT, 'gen/python') },
  })),
);

export const goWorkers = withWorkers((i, address, params) =>
  new Child(`go-worker-${i}`, spawn(goWorkerBinary(), ['--server', address, '--slots', String(params.slots), '--worker-id', `go-${i}`], { stdio: ['ignore', 'pipe', 'pipe'] })),
);
