import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { pino } from 'pino';
import { onShutdownSignals } from '../../rpc/index.js';
import { createTaskwireServer, parseTokens, readTokensFile, tokenAuth } from '../../server/index.js';
import { createPostgresStore } from '../../store/index.js';
import { parseHttpAddress } from '../../http/index.js';
import { Descriptors } from '../descriptors.js';
import type { GlobalOptions } from '../main.js';
import { env } from '../env.js';

interface ServerOptions {
  listen: string;
  db: string;
  services: string;
  leaseMs: string;
  graceMs: string;
  drainDelayMs: string;
  logLevel: string;
  sync: string;
  store?: string;
  pgSchema: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  tokensFile?: string;
  maxSessionAgeMs?: string;
  httpListen?: string;
  httpCorsOrigins?: string;
}

export function serverCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command('server')
    .description('run the web service: TaskService, WorkerService, health and reflection')
    .option('--listen <address>', 'address to listen on', env('TASKWIRE_LISTEN') ?? '127.0.0.1:50051')
    .option('--db <file>', 'SQLite database file (the default store)', env('TASKWIRE_DB') ?? './data/taskwire.db')
    .option('--store <url>', 'a PostgreSQL store shared by several replicas: postgres://user@host:5432/db', env('TASKWIRE_STORE'))
    .option('--tls-cert <file>', 'server certificate (PEM); with --tls-key turns TLS on', env('TASKWIRE_TLS_CERT'))
    .option('--tls-key <file>', 'server key (PEM)', env('TASKWIRE_TLS_KEY'))
    .option('--tls-client-ca <file>', 'require client certificates from this CA (mTLS)', env('TASKWIRE_TLS_CLIENT_CA'))
    .option('--tokens-file <file>', 'token auth: lines of role:token (roles client, worker, admin); also TASKWIRE_TOKENS')
    .option('--http-listen <address>', 'also serve Connect (JSON, binary) and gRPC-Web over HTTP on this address, e.g. 127.0.0.1:8080', env('TASKWIRE_HTTP_LISTEN'))
    .option('--http-cors-origins <origins>', 'browser origins allowed to call the HTTP listener, comma-separated ("*" for any); CORS is off without it', env('TASKWIRE_HTTP_CORS_ORIGINS'))
    .option('--pg-schema <name>', 'PostgreSQL schema for the tables', env('TASKWIRE_PG_SCHEMA') ?? 'public')
    .option('--max-session-age-ms <ms>', 'drain each worker session after this long so streams rebalance across replicas', env('TASKWIRE_MAX_SESSION_AGE_MS'))
    .option('--services <names>', 'task services to serve, comma-separated, from the descriptor sets', env('TASKWIRE_SERVICES') ?? 'demo.v1.DemoService')
    .option('--lease-ms <ms>', 'lease of a running attempt without heartbeats', env('TASKWIRE_LEASE_MS') ?? '30000')
    .option('--grace-ms <ms>', 'shutdown grace period', env('TASKWIRE_GRACE_MS') ?? '10000')
    .option('--drain-delay-ms <ms>', 'on shutdown, report NOT_SERVING this long before draining (load balancers catch up)', env('TASKWIRE_DRAIN_DELAY_MS') ?? '0')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', env('TASKWIRE_LOG_LEVEL') ?? 'info')
    .option('--sync <mode>', 'SQLite durability: full survives power loss, normal only a process crash', env('TASKWIRE_SYNC') ?? 'full')
    .action(async (options: ServerOptions) => {
      const sync = options.sync.toUpperCase();
      if (sync !== 'FULL' && sync !== 'NORMAL') throw new Error(`--sync must be full or normal, not "${options.sync}"`);
      const { descriptorPaths } = globals();
      const descriptors = new Descriptors(descriptorPaths);
      const logger = pino({ name: 'taskwire', level: options.logLevel });
      if (options.store !== undefined && !/^postgres(ql)?:\/\//.test(options.store)) {
        throw new Error(`--store takes a postgres:// URL; for SQLite use --db <file>`);
      }
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new Error('give --tls-cert and --tls-key together');
      if (options.httpListen !== undefined) {
        try {
          parseHttpAddress(options.httpListen);
        } catch (error) {
          throw new Error(`--http-listen: ${(error as Error).message}`);
        }
      }
      const corsOrigins = options.httpCorsOrigins?.split(',').map((o) => o.trim()).filter(Boolean) ?? [];
      const badOrigin = corsOrigins.find((o) => o !== '*' && !/^https?:\/\/[^/\s]+$/.test(o));
      if (badOrigin !== undefined) throw new Error(`--http-cors-origins: "${badOrigin}" is not an origin like https://app.example.com (scheme://host[:port], no path), or *`);
      if (corsOrigins.length > 0 && options.httpListen === undefined) throw new Error('--http-cors-origins needs --http-listen');
      const tokensText = env('TASKWIRE_TOKENS');
      const tokens = options.tokensFile !== undefined ? readTokensFile(options.tokensFile) : tokensText !== undefined ? parseTokens(tokensText) : [];
      const store = options.store === undefined ? undefined : await createPostgresStore({ connectionString: options.store, schema: options.pgSchema });
      const server = createTaskwireServer({
        ...(store === undefined ? {} : { store }),
        dbPath: options.db,
        sqliteSynchronous: sync,
        ...(tokens.length === 0 ? {} : { auth: tokenAuth(tokens) }),
        ...(options.tlsCert === undefined || options.tlsKey === undefined
          ? {}
          : { tls: { cert: options.tlsCert, key: options.tlsKey, ...(options.tlsClientCa === undefined ? {} : { clientCa: options.tlsClientCa }) } }),
        ...(options.maxSessionAgeMs === undefined ? {} : { maxSessionAgeMs: Number(options.maxSessionAgeMs) }),
        ...(options.httpListen === undefined ? {} : { httpListen: options.httpListen, httpCorsOrigins: corsOrigins }),
        logger,
        leaseMs: Number(options.leaseMs),
        shutdownGraceMs: Number(options.graceMs),
        drainDelayMs: Number(options.drainDelayMs),
        // Serialized FileDescriptorSets concatenate into one set: reflection sees them all.
        descriptorSet: Buffer.concat(descriptorPaths.map((path) => readFileSync(path))),
      });
      const services = options.services.split(',').map((s) => s.trim()).filter(Boolean);
      for (const service of services) server.addTaskTypes(descriptors.taskTypes([service]));
      onShutdownSignals(() => server.shutdown());
      await server.listen(options.listen);
      logger.info({ services, ...(server.httpPort === undefined ? {} : { httpPort: server.httpPort }), store: store === undefined ? options.db : 'postgres' }, 'serving');
    });
}
