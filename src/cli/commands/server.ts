import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { pino } from 'pino';
import { onShutdownSignals } from '../../rpc/index.js';
import { createTaskwireServer, parseTokens, readTokensFile, tokenAuth } from '../../server/index.js';
import { parseHttpAddress } from '../../http/index.js';
import { createPostgresStore, createSqliteStore, type Store } from '../../store/index.js';
import { Descriptors } from '../descriptors.js';
import type { GlobalOptions } from '../main.js';
import { env } from '../env.js';
import { choice, duration, listenAddress, LOG_LEVELS } from '../values.js';

interface ServerOptions {
  listen: string;
  db: string;
  services: string;
  leaseMs: number;
  graceMs: number;
  drainDelayMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  sync: 'full' | 'normal';
  store?: string;
  pgSchema: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  tokensFile?: string;
  maxSessionAgeMs?: number;
  httpListen?: string;
  metricsListen?: string;
  httpCorsOrigins?: string[];
  dashboard: boolean;
  retainSucceeded: number;
  retainFailed: number;
  retainCancelled: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A retention flag: how long finished tasks in one end state are kept; 0 keeps them forever. */
const retainOption = (state: string, variable: string, ms: number, shown: string) =>
  new Option(`--retain-${state} <duration>`, `delete ${state} tasks this long after they end; 0 keeps them forever (0..3650d)`)
    .env(variable)
    .default(ms, shown)
    .argParser(duration(0, 3650 * DAY));

/** The HTTP listener's address, checked as the listener will read it. */
function httpAddress(text: string): string {
  try {
    parseHttpAddress(text);
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}.`);
  }
  return text;
}

/** Browser origins for CORS: scheme://host[:port], comma-separated, or *. */
function corsOrigins(text: string): string[] {
  const origins = text.split(',').map((o) => o.trim()).filter(Boolean);
  const bad = origins.find((o) => o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o));
  if (bad !== undefined) throw new InvalidArgumentError(`"${bad}" is not an origin: give scheme://host[:port] without a path (https://app.example.com), comma-separated, or *.`);
  return origins;
}

/** Opens the SQLite file, or says which path did not work and what to do. */
function openSqlite(path: string, synchronous: 'FULL' | 'NORMAL'): Store {
  try {
    return createSqliteStore({ path, synchronous });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (reason.includes('npm install')) throw error; // the driver is missing: nothing to do with the path
    throw new Error(`cannot open the SQLite database "${path}": ${reason}; give --db (TASKWIRE_DB) a file in a directory you can write`);
  }
}

/** grpc-js's bind failure in words: which address, and what to do. */
function listenError(address: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  if (reason.startsWith('cannot listen on')) return error as Error; // already says which listener
  if (/EADDRINUSE|address already in use/i.test(reason)) {
    return new Error(`cannot listen on ${address}: the port is in use (another server?); stop it or give --listen another port`);
  }
  if (/EADDRNOTAVAIL|EACCES/i.test(reason)) {
    return new Error(`cannot listen on ${address}: ${/EACCES/.test(reason) ? 'permission denied (ports below 1024 need privileges)' : 'no such local address'}; give --listen another address`);
  }
  return new Error(`cannot listen on ${address}: ${reason}`);
}

export function serverCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('server')
    .description('run the web service: TaskService, WorkerService, health and reflection')
    .addOption(new Option('--listen <address>', 'address to listen on, host:port').env('TASKWIRE_LISTEN').default('127.0.0.1:50051').argParser(listenAddress))
    .addOption(new Option('--db <file>', 'SQLite database file (the default store)').env('TASKWIRE_DB').default('./data/taskwire.db'))
    .addOption(new Option('--store <url>', 'a PostgreSQL store shared by several replicas: postgres://user@host:5432/db').env('TASKWIRE_STORE'))
    .addOption(new Option('--tls-cert <file>', 'server certificate (PEM); with --tls-key turns TLS on').env('TASKWIRE_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'server key (PEM)').env('TASKWIRE_TLS_KEY'))
    .addOption(new Option('--tls-client-ca <file>', 'require client certificates from this CA (mTLS)').env('TASKWIRE_TLS_CLIENT_CA'))
    .option('--tokens-file <file>', 'token auth: lines of role:token (roles client, worker, admin); also TASKWIRE_TOKENS')
    .addOption(
      new Option('--http-listen <address>', 'also serve Connect (JSON, binary) and gRPC-Web over HTTP on this address, e.g. 127.0.0.1:8080')
        .env('TASKWIRE_HTTP_LISTEN')
        .argParser(httpAddress),
    )
    .addOption(
      new Option('--http-cors-origins <origins>', 'browser origins allowed to call the HTTP listener, comma-separated ("*" for any); CORS is off without it')
        .env('TASKWIRE_HTTP_CORS_ORIGINS')
        .argParser(corsOrigins),
    )
    .option('--no-dashboard', 'do not serve the web dashboard at / on the HTTP listener (the API stays)')
    .addOption(
      new Option('--metrics-listen <address>', 'serve Prometheus metrics at GET /metrics on this address, e.g. 127.0.0.1:9464')
        .env('TASKWIRE_METRICS_LISTEN')
        .argParser(listenAddress),
    )
    .addOption(new Option('--pg-schema <name>', 'PostgreSQL schema for the tables').env('TASKWIRE_PG_SCHEMA').default('public'))
    .addOption(
      new Option('--max-session-age-ms <duration>', 'drain each worker session after this long so streams rebalance across replicas (100ms..24h)')
        .env('TASKWIRE_MAX_SESSION_AGE_MS')
        .argParser(duration(100, 24 * HOUR)),
    )
    .addOption(
      new Option('--services <names>', 'task services to serve, comma-separated, from the descriptor sets')
        .env('TASKWIRE_SERVICES')
        .default('demo.v1.DemoService'),
    )
    .addOption(
      new Option('--lease-ms <duration>', 'lease of a running attempt without heartbeats (500ms..1h)')
        .env('TASKWIRE_LEASE_MS')
        .default(30_000, '30s')
        .argParser(duration(500, HOUR)),
    )
    .addOption(new Option('--grace-ms <duration>', 'shutdown grace period (0..1h)').env('TASKWIRE_GRACE_MS').default(10_000, '10s').argParser(duration(0, HOUR)))
    .addOption(
      new Option('--drain-delay-ms <duration>', 'on shutdown, report NOT_SERVING this long before draining, for load balancers (0..10m)')
        .env('TASKWIRE_DRAIN_DELAY_MS')
        .default(0)
        .argParser(duration(0, 10 * 60_000)),
    )
    .addOption(retainOption('succeeded', 'TASKWIRE_RETAIN_SUCCEEDED', DAY, '24h'))
    .addOption(retainOption('failed', 'TASKWIRE_RETAIN_FAILED', 7 * DAY, '7d'))
    .addOption(retainOption('cancelled', 'TASKWIRE_RETAIN_CANCELLED', DAY, '24h'))
    .addOption(new Option('--log-level <level>', LOG_LEVELS.join(', ')).env('TASKWIRE_LOG_LEVEL').default('info').argParser(choice(LOG_LEVELS)))
    .addOption(
      new Option('--sync <mode>', 'SQLite durability: full survives power loss, normal only a process crash')
        .env('TASKWIRE_SYNC')
        .default('full')
        .argParser(choice(['full', 'normal'] as const)),
    )
    .action(async (own: ServerOptions, command: Command) => {
      // --tls-cert and --tls-key are also the caller's options on the program, which takes them wherever they
      // stand on the line: here they are the server's.
      const all = command.optsWithGlobals<ServerOptions>();
      const options: ServerOptions = {
        ...own,
        ...(own.tlsCert === undefined && all.tlsCert !== undefined ? { tlsCert: all.tlsCert } : {}),
        ...(own.tlsKey === undefined && all.tlsKey !== undefined ? { tlsKey: all.tlsKey } : {}),
      };
      if (options.store !== undefined && !/^postgres(ql)?:\/\//.test(options.store)) {
        throw new Error(`--store takes a postgres:// URL; for SQLite use --db <file>`);
      }
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new Error('give --tls-cert and --tls-key together');
      if (options.httpCorsOrigins !== undefined && options.httpListen === undefined) throw new Error('--http-cors-origins needs --http-listen');
      const { descriptorPaths } = globals();
      const descriptors = new Descriptors(descriptorPaths);
      const services = options.services.split(',').map((s) => s.trim()).filter(Boolean);
      const taskTypes = services.map((service) => descriptors.taskTypes([service]));
      const logger = pino({ name: 'taskwire', level: options.logLevel });
      const tokensText = env('TASKWIRE_TOKENS');
      const tokens = options.tokensFile !== undefined ? readTokensFile(options.tokensFile) : tokensText !== undefined ? parseTokens(tokensText) : [];
      const store =
        options.store === undefined
          ? openSqlite(options.db, options.sync === 'full' ? 'FULL' : 'NORMAL')
          : await createPostgresStore({ connectionString: options.store, schema: options.pgSchema });
      const server = createTaskwireServer({
        store,
        ...(tokens.length === 0 ? {} : { auth: tokenAuth(tokens) }),
        ...(options.tlsCert === undefined || options.tlsKey === undefined
          ? {}
          : { tls: { cert: options.tlsCert, key: options.tlsKey, ...(options.tlsClientCa === undefined ? {} : { clientCa: options.tlsClientCa }) } }),
        ...(options.maxSessionAgeMs === undefined ? {} : { maxSessionAgeMs: options.maxSessionAgeMs }),
        ...(options.httpListen === undefined ? {} : { httpListen: options.httpListen, httpCorsOrigins: options.httpCorsOrigins ?? [], dashboard: options.dashboard }),
        ...(options.metricsListen === undefined ? {} : { metricsListen: options.metricsListen }),
        logger,
        leaseMs: options.leaseMs,
        retention: { succeededMs: options.retainSucceeded, failedMs: options.retainFailed, cancelledMs: options.retainCancelled },
        shutdownGraceMs: options.graceMs,
        drainDelayMs: options.drainDelayMs,
        // Serialized FileDescriptorSets concatenate into one set: reflection sees them all.
        descriptorSet: Buffer.concat(descriptorPaths.map((path) => readFileSync(path))),
      });
      for (const types of taskTypes) server.addTaskTypes(types);
      try {
        await server.listen(options.listen);
      } catch (error) {
        await server.shutdown().catch(() => undefined);
        throw listenError(options.listen, error);
      }
      onShutdownSignals(() => server.shutdown());
      const http = {
        ...(server.httpPort === undefined ? {} : { httpPort: server.httpPort }),
        ...(server.metricsPort === undefined ? {} : { metricsPort: server.metricsPort }),
      };
      logger.info({ services, ...http, store: options.store === undefined ? options.db : 'postgres' }, 'serving');
    });
}
