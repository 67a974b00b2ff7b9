/**
 * The container test: builds the committed Dockerfile into an image (base
 * images made here, no registry, no network in the build), then runs a server
 * and two workers as containers in a network namespace of the test's own and
 * drives them with a client inside that namespace. Needs root, podman, runc
 * and debootstrap: `npm run test:containers` (README: Containers).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '../..');
process.env.CONTAINERS_CONF = join(here, 'containers.conf');

const id = `twc${process.pid}`;
const image = `localhost/taskwire:${id}`;
const baseImages = ['docker.io/library/node:20-bookworm-slim', 'docker.io/library/node:20-bookworm'];
const netns = id;
const network = `ns:/run/netns/${netns}`;
const volume = `${id}-data`;
const name = (role: string) => `${id}-${role}`;
const work = mkdtempSync(join(tmpdir(), 'taskwire-containers-'));
const server = '127.0.0.1:50051';

const sh = async (command: string, args: readonly string[], timeoutMs = 120_000) =>
  (await run(command, args, { cwd: repo, maxBuffer: 64 << 20, timeout: timeoutMs })).stdout;
const podman = (...args: string[]) => sh('podman', args);
/** Runs a node program inside the test's namespace, where the containers listen. */
const inNetwork = async (args: readonly string[], timeoutMs = 120_000) =>
  JSON.parse(await sh('ip', ['netns', 'exec', netns, process.execPath, ...args], timeoutMs)) as unknown;
const client = (...args: string[]) => inNetwork(['--import', 'tsx', join(here, 'client.ts'), server, ...args]);
const cli = (...args: string[]) => inNetwork([CLI, '--server', server, '--json', ...args], 10_000);

const state = async (container: string) =>
  JSON.parse(await podman('inspect', '--format', '{{json .State}}', container)) as { Running: boolean; ExitCode: number };
const healthy = async (container: string) => {
  try {
    await podman('healthcheck', 'run', container);
    return true;
  } catch {
    return false;
  }
};
const connectedWorkers = async () => ((await cli('workers')) as { workerId: string }[]).map((w) => w.workerId).sort();
const hostNetwork = async () => ({
  forwarding: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
  ruleset: await sh('nft', ['list', 'ruleset']),
});

let before: Awaited<ReturnType<typeof hostNetwork>>;
/** Volumes that existed before the test: every other one is the test's (the image declares VOLUME /data). */
let volumesBefore = new Set<string>();
const figures: Record<string, string> = {};

/**
 * Every container shares the test's one network namespace, so each needs its
 * own ports for what the image listens on besides gRPC (HTTP, metrics).
 */
let nextPort = 0;
const ownPorts = () => {
  nextPort++;
  return ['--env', `TASKWIRE_HTTP_LISTEN=0.0.0.0:${8080 + nextPort}`, '--env', `TASKWIRE_METRICS_LISTEN=0.0.0.0:${9464 + nextPort}`];
};

function startServer(role: string, args: { init: boolean; listen?: string }) {
  return podman(
    'run', '--detach', '--pull=never', '--name', name(role), '--network', network,
    ...(args.init ? ['--init'] : []),
    '--volume', `${volume}:/data`,
    '--env', 'TASKWIRE_GRACE_MS=10000',
    ...(args.listen ? ['--env', `TASKWIRE_LISTEN=${args.listen}`, '--env', `TASKWIRE_DB=/data/${role}.db`, ...ownPorts()] : []),
    image, 'server',
  );
}

function startWorker(workerId: string) {
  return podman(
    'run', '--detach', '--pull=never', '--init', '--no-healthcheck', '--name', name(workerId), '--network', network,
    '--env', `TASKWIRE_SERVER=${server}`, '--env', 'TASKWIRE_CONCURRENCY=4', '--env', `TASKWIRE_WORKER_ID=${workerId}`,
    '--env', `TASKWIRE_METRICS_LISTEN=0.0.0.0:${9464 + 100 + ++nextPort}`,
    image, 'worker', '--demo',
  );
}

describe('the image from the committed Dockerfile', () => {
  beforeAll(async () => {
    before = await hostNetwork();
    volumesBefore = new Set((await podman('volume', 'ls', '--quiet')).split('\n').filter(Boolean));
    let started = Date.now();
    await sh('bash', [join(here, 'base-images.sh'), join(work, 'base')], 600_000);
    figures['base images'] = `${((Date.now() - started) / 1000).toFixed(0)} s`;
    started = Date.now();
    await sh('bash', [join(here, 'build-image.sh'), join(work, 'build'), image], 900_000);
    figures['image build'] = `${((Date.now() - started) / 1000).toFixed(0)} s (npm cache fill + podman build)`;
    await sh('ip', ['netns', 'add', netns]);
    await sh('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    await podman('volume', 'create', volume);
  }, 1_500_000);

  afterAll(async () => {
    const quiet = (command: string, ...args: string[]) => sh(command, args).catch(() => '');
    const containers = (await quiet('podman', 'ps', '--all', '--format', '{{.Names}}', '--filter', `name=^${id}-`)).split('\n').filter(Boolean);
    if (containers.length > 0) await quiet('podman', 'rm', '--force', '--volumes', '--time', '0', ...containers);
    const volumes = (await quiet('podman', 'volume', 'ls', '--quiet')).split('\n').filter((v) => v && !volumesBefore.has(v));
    if (volumes.length > 0) await quiet('podman', 'volume', 'rm', '--force', ...volumes);
    await quiet('podman', 'rmi', '--force', image, ...baseImages);
    await quiet('ip', 'netns', 'del', netns);
    rmSync(work, { recursive: true, force: true });
    console.log(Object.entries(figures).map(([k, v]) => `${k}: ${v}`).join('\n'));
  }, 120_000);

  it('runs as a non-root user with a health check, from node:20-bookworm-slim', async () => {
    type Inspected = { Size: number; Config: { User: string; Entrypoint: string[]; Cmd: string[] } } & Record<string, unknown>;
    const [inspected, base] = JSON.parse(await podman('image', 'inspect', image, baseImages[0]!)) as Inspected[];
    const config = inspected!.Config;
    expect(config.User).toBe('node');
    // podman names the key Healthcheck or HealthCheck depending on its version.
    const healthcheck = Object.entries({ ...inspected, ...config }).find(([key]) => key.toLowerCase() === 'healthcheck')?.[1] as { Test?: string[] } | undefined;
    expect(healthcheck?.Test).toEqual(['CMD', 'node', '/app/dist/src/cli/main.js', 'health', '--timeout-ms', '4000']);
    expect([...config.Entrypoint, ...config.Cmd]).toEqual(['node', '/app/dist/src/cli/main.js', 'server']);
    const [size, baseSize] = [inspected!.Size, base!.Size];
    figures['image size'] = `${(size / 1e6).toFixed(0)} MB (base ${(baseSize / 1e6).toFixed(0)} MB + taskwire ${((size - baseSize) / 1e6).toFixed(0)} MB)`;
    // The dev dependencies are gone: only production packages ship.
    const listing = await podman('run', '--rm', '--pull=never', '--network', 'none', '--no-healthcheck', '--entrypoint', 'sh', image, '-c',
      'cd /app/node_modules && ls -d */ @*/*/');
    const packages = listing.split('\n').filter(Boolean).map((dir) => dir.replace(/\/$/, ''));
    expect(packages).toEqual(expect.arrayContaining(['better-sqlite3', '@grpc/grpc-js', 'nice-grpc', 'pg']));
    for (const dev of ['vitest', 'typescript', 'tsx', 'ts-proto', '@bufbuild/buf', 'amqplib', 'bullmq']) expect(packages).not.toContain(dev);
    expect(packages.filter((p) => p.startsWith('@vitest/') || p.startsWith('@typescript/'))).toEqual([]);
  });

  it('serves tasks: a server and two workers as containers, a client in the same network', async () => {
    await startServer('server', { init: true });
    await waitFor(() => healthy(name('server')), { timeoutMs: 30_000, intervalMs: 250, what: 'the server container to be healthy' });
    await startWorker('w1');
    await startWorker('w2');
    await waitFor(async () => (await connectedWorkers()).join() === 'w1,w2', { timeoutMs: 30_000, intervalMs: 250, what: 'two workers' });

    const { results } = (await client('echo', '200', 'first')) as { results: [string, string, number][] };
    expect(results.map(([text]) => text)).toEqual(Array.from({ length: 200 }, (_, i) => `first-${i}`));
    expect(new Set(results.map(([, worker]) => worker))).toEqual(new Set(['w1', 'w2']));
  });

  it('podman stop drains the server within its grace period and exits 0; work goes on after a restart', async () => {
    // Tasks running in the workers while the server stops: their results
    // wait in the workers until the server is back.
    const { ids } = (await client('sleep', '6', '3000')) as { ids: string[] };
    await waitFor(async () => ((await cli('stats')) as { running?: unknown }[]).some((q) => Number(q.running ?? 0) > 0), {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'running sleeps',
    });
    const started = Date.now();
    await podman('stop', '--time', '30', name('server'));
    const stopMs = Date.now() - started;
    figures['server stop (drain)'] = `${stopMs} ms`;
    expect(stopMs).toBeLessThan(10_000 + 2_000); // the server's grace plus process exit
    expect(await state(name('server'))).toMatchObject({ Running: false, ExitCode: 0 });
    expect(await podman('logs', name('server'))).toContain('shutting down');

    await podman('start', name('server'));
    await waitFor(() => healthy(name('server')), { timeoutMs: 30_000, intervalMs: 250, what: 'the restarted server' });
    await waitFor(async () => (await connectedWorkers()).join() === 'w1,w2', { timeoutMs: 60_000, intervalMs: 250, what: 'workers to reconnect' });

    const { states } = (await client('results', ...ids)) as { states: string[] };
    expect(states).toEqual(ids.map(() => 'TASK_STATE_SUCCEEDED'));
    const { results } = (await client('echo', '100', 'second')) as { results: [string, string, number][] };
    expect(results.map(([text]) => text)).toEqual(Array.from({ length: 100 }, (_, i) => `second-${i}`));
    expect(new Set(results.map(([, worker]) => worker))).toEqual(new Set(['w1', 'w2']));
  });

  it('stops on SIGTERM without an init too (node as PID 1), exit 0, and a worker stops cleanly', async () => {
    await startServer('bare', { init: false, listen: '0.0.0.0:50052' });
    await waitFor(async () => (await podman('logs', name('bare'))).includes('serving'), { timeoutMs: 30_000, intervalMs: 250, what: 'the second server' });
    let started = Date.now();
    await podman('stop', '--time', '30', name('bare'));
    figures['server stop without init'] = `${Date.now() - started} ms`;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await state(name('bare'))).toMatchObject({ Running: false, ExitCode: 0 });

    started = Date.now();
    await podman('stop', '--time', '30', name('w2'));
    figures['worker stop (idle)'] = `${Date.now() - started} ms`;
    expect(await state(name('w2'))).toMatchObject({ Running: false, ExitCode: 0 });
  });

  it('leaves the host network as it found it (no forwarding or NAT rules added)', async () => {
    expect(await hostNetwork()).toEqual(before);
  });
});
