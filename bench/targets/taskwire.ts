import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DemoServiceDefinition, EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { TaskServiceDefinition } from '../../gen/ts/taskwire/v1/task_service.js';
import { createClient, pack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { CLI, findPids, freePort, startNode, waitForPort, type Child, type BenchParams, type Producer, type Setup, type Target } from '../lib.js';

const ECHO = '/demo.v1.DemoService/Echo';

/** BENCH_CPU_PROF=server,worker writes V8 CPU profiles of those processes to .bench/ (see BENCHMARKS.md). */
function profile(role: string): string[] {
  const roles = (process.env.BENCH_CPU_PROF ?? '').split(',');
  return roles.includes(role) ? ['--cpu-prof', '--cpu-prof-dir', `${process.cwd()}/.bench/profiles`, `--cpu-prof-name=${role}-${Date.now()}.cpuprofile`] : [];
}

/** taskwire with its defaults: SQLite (WAL, synchronous=FULL), server and workers as `taskwire` processes. */
function setup(params: BenchParams): Promise<Setup> {
  return setupWith(params, false);
}

/**
 * The same with `--metrics-listen` on the server and every worker, each
 * scraped every 5 s (as Prometheus would, a little more often).
 */
function setupWithMetrics(params: BenchParams): Promise<Setup> {
  return setupWith(params, true);
}

async function setupWith(params: BenchParams, metrics: boolean): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'taskwire-bench-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // The HTTP listener too (idle unless a target calls it), so the gRPC targets and Connect compare on one server setup.
  const httpPort = await freePort();
  const metricsPorts = metrics ? await Promise.all(Array.from({ length: params.workers + 1 }, () => freePort())) : [];
  const metricsFlag = (i: number) => (metrics ? ['--metrics-listen', `127.0.0.1:${metricsPorts[i]}`] : []);
  const server = startNode('server', [...profile('server'), CLI, 'server', '--listen', address, '--http-listen', `127.0.0.1:${httpPort}`, '--db', join(dir, 'tasks.db'), '--log-level', 'warn', '--sync', process.env.BENCH_SQLITE_SYNC ?? 'full', ...metricsFlag(0)]);
  await waitForPort(port);
  await waitForPort(httpPort);
  const workers = Array.from({ length: params.workers }, (_, i) =>
    startNode(`worker-${i}`, [...profile(i === 0 ? 'worker' : 'none'), CLI, '--server', address, 'worker', '--demo', '--concurrency', String(params.slots), '--log-level', 'warn', ...metricsFlag(i + 1)]),
  );
  for (const metricsPort of metricsPorts) await waitForPort(metricsPort);
  const scrape = () => {
    for (const metricsPort of metricsPorts) void fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text()).catch(() => undefined);
  };
  // Scraped from the start, as Prometheus scrapes a target it has found: a process's first
  // scrapes under load make V8 recompile code the gRPC streams share with HTTP/1.1 for ~10 s.
  if (metrics) scrape();
  const scraper = metrics ? setInterval(scrape, 5_000) : undefined;
  return {
    children: [server, ...workers],
    info: { address, httpPort, workers: params.workers },
    async teardown() {
      clearInterval(scraper);
      await Promise.all(workers.map((w) => w.stop()));
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `count` workers are connected, over all the replicas listed in `address`. */
export async function waitForWorkers(address: string, count: number, replicas = 1): Promise<void> {
  const clients = address.split(',').slice(0, replicas).map((server) => createClient({ server }));
  try {
    for (let i = 0; i < 300; i++) {
      const connected = (await Promise.all(clients.map((c) => c.workers()))).reduce((n, w) => n + w.length, 0);
      if (connected >= count) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    for (const client of clients) client.close();
  }
}

/** Submits over the client's Session stream, asking for the result in the submit. */
export const session: Target = {
  setup,
  async producer(params, info) {
    const address = String(info.address);
    await waitForWorkers(address, params.workers);
    const client = createClient({ server: address });
    return {
      async run(payload) {
        const outcome = await client.run(ECHO, pack(EchoRequest, { payload }));
        if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new Error(`task ${outcome.taskId} ended ${outcome.state}`);
      },
      async close() {
        client.close();
      },
    };
  },
};

/**
 * taskwire on PostgreSQL with `replicas` servers: workers spread over them,
 * the producer submitting to each in turn (one Session stream per replica).
 */
export function postgres(replicas: number): Target {
  const url = process.env.TASKWIRE_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
  return {
    async setup(params) {
      const schema = `bench_${process.pid}_${Date.now()}`;
      const addresses: string[] = [];
      const servers: Child[] = [];
      for (let i = 0; i < replicas; i++) {
        const port = await freePort();
        const address = `127.0.0.1:${port}`;
        addresses.push(address);
        servers.push(startNode(`server-${i}`, [...profile('server'), CLI, 'server', '--listen', address, '--store', url, '--pg-schema', schema, '--log-level', 'warn']));
        await waitForPort(port);
      }
      const workers = Array.from({ length: params.workers }, (_, i) =>
        startNode(`worker-${i}`, [CLI, '--server', addresses[i % replicas]!, 'worker', '--demo', '--concurrency', String(params.slots), '--log-level', 'warn']),
      );
      return {
        children: [...servers, ...workers],
        external: postgresPids,
        info: { addresses, workers: params.workers },
        async teardown() {
          await Promise.all(workers.map((w) => w.stop()));
          await Promise.all(servers.map((s) => s.stop()));
          const pgModule = await import('pg');
          const client = new pgModule.default.Client({ connectionString: url });
          await client.connect();
          await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await client.end();
        },
      };
    },
    async producer(params, info) {
      const addresses = info.addresses as string[];
      await waitForWorkers(addresses.join(','), params.workers, addresses.length);
      const clients = addresses.map((address) => createClient({ server: address }));
      let next = 0;
      return {
        async run(payload) {
          const client = clients[next++ % clients.length]!;
          const outcome = await client.run(ECHO, pack(EchoRequest, { payload }));
          if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new Error(`task ${outcome.taskId} ended ${outcome.state}`);
        },
        async close() {
          for (const client of clients) client.close();
        },
      };
    },
  };
}

/** PostgreSQL's own processes (its backends serve our connections): measured with the rest. */
function postgresPids() {
  const pids = [];
  for (const pid of findPids(/^postgres: /)) pids.push({ name: 'postgres', pid });
  return pids;
}

/** One unary SubmitTask per task; results followed over the Session stream. */
export const unary: Target = {
  setup,
  async producer(params, info): Promise<Producer> {
    const address = String(info.address);
    await waitForWorkers(address, params.workers);
    const channel = createRpcChannel(address);
    const rpc = createRpcClient(TaskServiceDefinition, channel);
    const client = createClient({ server: address });
    return {
      async run(payload) {
        const { task } = await rpc.submitTask({ type: ECHO, input: pack(EchoRequest, { payload }) });
        const outcome = await client.result(task!.id);
        if (outcome.state !== TaskState.TASK_STATE_SUCCEEDED) throw new Error(`task ${outcome.taskId} ended ${outcome.state}`);
      },
      async close() {
        client.close();
        channel.close();
      },
    };
  },
};

/**
 * The gateway: a plain unary call of demo.v1.DemoService/Echo, answered with
 * the task's result. The caller is raw @grpc/grpc-js, as the `grpc-unary`
 * floor's producer is: the same kind of client on both sides, so the
 * difference between the two rows is the server's. (Any gRPC client in any
 * language calls the gateway; none of them is taskwire's.)
 */
export const gateway: Target = {
  setup,
  async producer(params, info): Promise<Producer> {
    const address = String(info.address);
    await waitForWorkers(address, params.workers);
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    const serialize = (request: EchoRequest) => Buffer.from(EchoRequest.encode(request).finish());
    const deserialize = (bytes: Buffer) => EchoResponse.decode(bytes);
    return {
      run: (payload) =>
        new Promise<void>((resolve, reject) =>
          client.makeUnaryRequest(ECHO, serialize, deserialize, { text: '', payload }, (error) => (error ? reject(error) : resolve())),
        ),
      async close() {
        client.close();
      },
    };
  },
};

/** The typed client's `call()`: `service(DemoService).echo.call(...)`, submit and wait for the result in one. */
export const call: Target = {
  setup,
  async producer(params, info): Promise<Producer> {
    const address = String(info.address);
    await waitForWorkers(address, params.workers);
    const client = createClient({ server: address });
    const demo = client.service(DemoServiceDefinition);
    return {
      async run(payload) {
        await demo.echo.call({ payload });
      },
      async close() {
        client.close();
      },
    };
  },
};

/**
 * The gateway over the HTTP listener: `POST /demo.v1.DemoService/Echo` with a
 * Connect JSON body (the payload base64, as proto3 JSON has bytes), answered
 * with the result as JSON. Keep-alive HTTP/1.1, at most 64 connections.
 */
export const connectJson: Target = {
  setup,
  async producer(params, info): Promise<Producer> {
    await waitForWorkers(String(info.address), params.workers);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const post = (body: string) =>
      new Promise<void>((resolve, reject) => {
        const request = http.request(
          { host: '127.0.0.1', port: Number(info.httpPort), path: '/demo.v1.DemoService/Echo', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (c: Buffer) => chunks.push(c));
            response.on('end', () => {
              if (response.statusCode === 200) resolve();
              else reject(new Error(`HTTP ${response.statusCode}: ${Buffer.concat(chunks).toString()}`));
            });
          },
        );
        request.on('error', reject);
        request.end(body);
      });
    return {
      run: (payload) => post(JSON.stringify({ payload: payload.toString('base64') })),
      async close() {
        agent.destroy();
      },
    };
  },
};

/** `taskwire` with metrics on: the cost of --metrics-listen (BENCHMARKS.md). */
export const sessionWithMetrics: Target = { ...session, setup: setupWithMetrics };
