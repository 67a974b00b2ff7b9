import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import type { ServiceDefinition as GrpcJsServiceDefinition } from '@grpc/grpc-js';
import { composeServerMiddleware, type CompatServiceDefinition, type ServerMiddleware, type ServiceImplementation } from 'nice-grpc';
import { HealthDefinition, HealthServiceImpl, HealthState } from 'nice-grpc-server-health';
import { pino, type Logger } from 'pino';
import type { TaskwireCallContext } from './context.js';
import { authMiddleware, type AuthHook } from './middleware/auth.js';
import { callContextMiddleware, withCallDeadline } from './middleware/deadline.js';
import { decodingMiddleware, withGuardedDecoding } from './middleware/decoding.js';
import { errorMiddleware } from './middleware/errors.js';
import { loggingMiddleware, type CallObserver } from './middleware/logging.js';
import { serverChannelOptions, type TransportOptions } from './options.js';
import { reflectionServices } from './reflection.js';
import { createServerCredentials, type TlsServerOptions } from './tls.js';
import { createGrpcServer } from './grpc-server.js';
import { unaryHandler, type UnaryHandler } from './unary.js';

export interface RpcServerOptions extends TransportOptions {
  readonly logger?: Logger;
  /** Told each call's method, status code and duration, where the log line is written (metrics). */
  readonly observeCall?: CallObserver;
  /** How long shutdown waits for calls and streams to end before it forces them. Default 10 s. */
  readonly shutdownGraceMs?: number;
  /**
   * How long health reports NOT_SERVING before draining starts, so that load
   * balancers (a Kubernetes readiness probe) stop sending new calls first. Default 0.
   */
  readonly drainDelayMs?: number;
  /** Called when draining starts, before open calls are told to finish: end long-lived streams here. */
  readonly onDrain?: () => void;
  /** A FileDescriptorSet (`buf build -o`) for server reflection. */
  readonly descriptorSet?: Uint8Array | string;
  /** Authenticates and authorises calls; off when absent. */
  readonly auth?: AuthHook;
  /** Close connections after this age so long-lived streams rebalance across replicas. */
  readonly maxConnectionAgeMs?: number;
  readonly tls?: TlsServerOptions;
}

export interface ShutdownResult {
  /** True when the grace period ran out and open calls were cut. */
  readonly forced: boolean;
}

export interface RpcServer {
  readonly logger: Logger;
  /** Per-service health, served by grpc.health.v1.Health. */
  readonly health: HealthState;
  /** Aborted when shutdown begins: stream handlers end their streams (or tell peers to drain). */
  readonly draining: AbortSignal;
  readonly shutdownGraceMs: number;
  add<Service extends CompatServiceDefinition>(
    definition: Service,
    implementation: ServiceImplementation<Service, TaskwireCallContext>,
  ): void;
  /**
   * Unary methods served by grpc-js directly (unary.ts): the same auth,
   * logging, metrics and error rules as `add`, at a fraction of nice-grpc's
   * cost per call. For hot unary methods (the gateway).
   */
  addUnary(definition: GrpcJsServiceDefinition, implementation: Readonly<Record<string, UnaryHandler<never, unknown>>>): void;
  /** Binds and starts serving; returns the bound port (useful with port 0). */
  listen(address: string): Promise<number>;
  /** Health of every service (and the server's): NOT_SERVING while it cannot do its work. Ignored once shutting down. */
  setServing(serving: boolean): void;
  /**
   * Graceful shutdown: health NOT_SERVING → drain delay → `draining` aborts
   * → stop accepting → wait for open calls → force after the grace period.
   * Idempotent.
   */
  shutdown(): Promise<ShutdownResult>;
}

/** A gRPC server with the built-in middleware, health, reflection and graceful shutdown. */
export function createRpcServer(options: RpcServerOptions = {}): RpcServer {
  const logger = options.logger ?? pino({ name: 'taskwire' });
  const shutdownGraceMs = options.shutdownGraceMs ?? 10_000;
  const drainController = new AbortController();
  // Every open stream (one per worker, watcher, session) listens for the drain.
  setMaxListeners(0, drainController.signal);
  const health = HealthState();
  const serviceNames: string[] = [];

  const server = createGrpcServer(serverChannelOptions(options), withCallDeadline);
  // Outermost first, as nice-grpc's server.use() chained them; each layer's context type is checked where it is written.
  const layers: ServerMiddleware<any, any>[] = [loggingMiddleware(logger, options.observeCall), errorMiddleware, callContextMiddleware(drainController.signal)];
  // Without an auth hook every call is admitted: no layer to pay for.
  if (options.auth !== undefined) layers.push(authMiddleware(options.auth));
  layers.push(decodingMiddleware);
  const middleware = layers.reduce((outer, inner) => composeServerMiddleware(outer, inner)) as ServerMiddleware;
  const unaryRules = { logger, observe: options.observeCall, auth: options.auth, draining: drainController.signal };

  const healthImpl = HealthServiceImpl(health);
  server.add(
    withGuardedDecoding(HealthDefinition),
    {
      check: healthImpl.check,
      // Watch streams never end by themselves; end them when the server drains.
      watch: (request: Parameters<typeof healthImpl.watch>[0], context: Parameters<typeof healthImpl.watch>[1]) =>
        healthImpl.watch(request, { ...context, signal: AbortSignal.any([context.signal, drainController.signal]) }),
    },
    middleware,
  );

  let shutdownPromise: Promise<ShutdownResult> | undefined;
  const served = (definition: CompatServiceDefinition) => {
    const name = serviceName(definition);
    if (name !== undefined) {
      serviceNames.push(name);
      health.setStatus('healthy', name);
    }
  };

  return {
    logger,
    health,
    draining: drainController.signal,
    shutdownGraceMs,
    add(definition, implementation) {
      server.add(withGuardedDecoding(definition), implementation, middleware);
      served(definition);
    },
    addUnary(definition, implementation) {
      const guarded = withGuardedDecoding(definition);
      const handlers = Object.fromEntries(
        Object.entries(guarded).map(([name, method]) => {
          if (method.requestStream || method.responseStream) throw new Error(`${method.path} streams: addUnary serves unary methods only`);
          const handler = implementation[name];
          if (handler === undefined) throw new Error(`the implementation has no method ${name} (${method.path})`);
          return [name, unaryHandler(method.path, handler as UnaryHandler<unknown, unknown>, unaryRules)];
        }),
      );
      server.addGrpcJs(guarded, handlers);
      served(definition);
    },
    async listen(address) {
      if (options.descriptorSet !== undefined) {
        const bytes =
          typeof options.descriptorSet === 'string' ? readFileSync(options.descriptorSet) : options.descriptorSet;
        for (const [definition, implementation] of reflectionServices(bytes, [...serviceNames, 'grpc.health.v1.Health'])) {
          server.add(withGuardedDecoding(definition), implementation, middleware);
        }
      }
      const port = await server.listen(address, createServerCredentials(options.tls));
      logger.info({ address, port }, 'listening');
      return port;
    },
    setServing(serving) {
      if (shutdownPromise !== undefined) return;
      const status = serving ? 'healthy' : 'unhealthy';
      health.setStatus(status);
      for (const name of serviceNames) health.setStatus(status, name);
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        health.setStatus('unhealthy');
        for (const name of serviceNames) health.setStatus('unhealthy', name);
        if (options.drainDelayMs) await new Promise((resolve) => setTimeout(resolve, options.drainDelayMs));
        logger.info({ graceMs: shutdownGraceMs }, 'shutting down');
        options.onDrain?.();
        drainController.abort();
        let forced = false;
        const timer = setTimeout(() => {
          forced = true;
          logger.warn('grace period over; closing the remaining calls');
          server.forceShutdown();
        }, shutdownGraceMs);
        await server.shutdown();
        clearTimeout(timer);
        logger.info({ forced }, 'stopped');
        return { forced };
      })();
      return shutdownPromise;
    },
  };
}

/** A service's full name: from a ts-proto definition, or from its first method's path. */
function serviceName(definition: CompatServiceDefinition): string | undefined {
  if ('fullName' in definition && typeof definition.fullName === 'string') return definition.fullName;
  const first = Object.values(definition)[0] as { path?: unknown } | undefined;
  return typeof first?.path === 'string' ? /^\/([^/]+)\//.exec(first.path)?.[1] : undefined;
}
