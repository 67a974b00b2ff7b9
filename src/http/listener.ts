import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { FileRegistry } from '@bufbuild/protobuf';
import { Code, ConnectError, createContextValues, type ConnectRouter, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { UniversalServerRequest } from '@connectrpc/connect/protocol';
import type { NodeHandlerFn } from './node.js';
import { composeServerMiddleware, type CompatServiceDefinition } from 'nice-grpc';
import type { Logger } from 'pino';
import { authenticate, errorMiddleware, loggingMiddleware, readPem, type AuthHook, type CallObserver, type TlsServerOptions } from '../rpc/index.js';
import { adapt, peerKey, principalKey, toConnectError, type CallEnvironment } from './call.js';
import { withCors } from './cors.js';
import { loadDashboard, withDashboard } from './dashboard.js';
import { withCheckedDecoding } from './decoding.js';
import { servedMethods, type ServedMethod } from './methods.js';

/** A service the gRPC server serves, offered to the listener as it is. */
export interface HttpService {
  readonly definition: CompatServiceDefinition;
  readonly implementation: object;
}

export interface HttpListenerOptions {
  readonly logger: Logger;
  /** The gRPC server's drain signal: streams and gateway calls end on it as they do on gRPC. */
  readonly draining: AbortSignal;
  /** Where the services' descriptors come from (see createRegistry). */
  readonly registry: FileRegistry;
  readonly services: readonly HttpService[];
  readonly auth?: AuthHook;
  readonly tls?: TlsServerOptions;
  /** Origins browsers may call from; none (the default) leaves CORS off. */
  readonly corsOrigins?: readonly string[];
  /** Largest request and response message, as on gRPC. */
  readonly maxMessageBytes: number;
  /** Serve the built dashboard at `/` (default true; `--no-dashboard` turns it off). */
  readonly dashboard?: boolean;
  /** Told each call's method, status code and duration (metrics). */
  readonly observeCall?: CallObserver;
}

export interface HttpListener {
  /** Binds and starts serving; returns the bound port. */
  listen(address: string): Promise<number>;
  /** Stops accepting, lets open calls end, cuts what is left after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

/** "host:port", "[v6]:port" → the parts, or an error naming the option. */
export function parseHttpAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw new Error(`the HTTP listen address "${address}" must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

const gRpcOnly = (path: string) => () => {
  throw new ConnectError(`${path} is a bidirectional stream, served over gRPC only: call it on the gRPC port`, Code.Unimplemented);
};

/**
 * The Connect, gRPC-Web and gRPC-over-HTTP/2 listener (connect-node) beside
 * the gRPC server: the same service implementations, reached over HTTP/1.1
 * (and HTTP/2 with TLS) with JSON or binary bodies.
 */
export function createHttpListener(options: HttpListenerOptions): HttpListener {
  const { logger, registry } = options;
  const env: CallEnvironment = {
    middleware: composeServerMiddleware(loggingMiddleware(logger, options.observeCall), errorMiddleware),
    draining: options.draining,
    logger,
  };
  const byService = new Map<string, ServedMethod[]>();
  for (const { definition, implementation } of options.services) {
    for (const method of servedMethods(definition, implementation)) {
      const service = method.path.split('/')[1]!;
      byService.set(service, [...(byService.get(service) ?? []), method]);
    }
  }

  const routes = (router: ConnectRouter) => {
    for (const [name, methods] of byService) {
      const service = registry.getService(name);
      if (service === undefined) {
        throw new Error(`service ${name} is not in the server's descriptor sets, so HTTP cannot serve it: pass the FileDescriptorSet that defines it (descriptorSet, or --descriptor)`);
      }
      for (const desc of service.methods) {
        const path = `/${service.typeName}/${desc.name}`;
        const method = methods.find((m) => m.path === path);
        if (method !== undefined) router.rpc(desc, adapt(method, desc, env) as never);
        else if (desc.methodKind === 'bidi_streaming' || desc.methodKind === 'client_streaming') router.rpc(desc, gRpcOnly(path) as never);
      }
    }
    const handlers = router.handlers.map((handler) => withCheckedDecoding(handler, options.maxMessageBytes, mayRead));
    router.handlers.splice(0, router.handlers.length, ...handlers);
  };

  const auth = options.auth;
  /** The auth check alone, for reading a binary body ahead of connect-es (decoding.ts). */
  const mayRead = async (request: UniversalServerRequest) => {
    if (auth === undefined) return true;
    const [, service, method] = new URL(request.url).pathname.split('/');
    try {
      await authenticate(auth, { method: `/${service}/${method}`, authorization: request.header.get('authorization') ?? undefined, peer: request.contextValues?.get(peerKey) ?? 'unknown' });
      return true;
    } catch {
      return false;
    }
  };
  const gate =
    auth === undefined
      ? undefined
      : async (context: HandlerContext) => {
          // Before the body is read: a caller without a valid token cannot make the server read 16 MiB.
          const method = `/${context.service.typeName}/${context.method.name}`;
          const peer = context.values.get(peerKey);
          try {
            context.values.set(principalKey, await authenticate(auth, { method, authorization: context.requestHeader.get('authorization') ?? undefined, peer }));
          } catch (error) {
            const refused = toConnectError(error);
            logger.info({ method, peer, code: Code[refused.code], details: refused.rawMessage }, 'call refused');
            throw refused;
          }
        };

  let handler: NodeHandlerFn = connectNodeAdapter({
    routes,
    jsonOptions: { registry, ignoreUnknownFields: false },
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    ...(gate === undefined ? {} : { requestGate: gate }),
    contextValues: (request) => {
      const socket = request.socket;
      const host = socket.remoteAddress ?? 'unknown';
      return createContextValues().set(peerKey, `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`);
    },
  });
  if (options.corsOrigins !== undefined && options.corsOrigins.length > 0) handler = withCors(options.corsOrigins, handler);
  if (options.dashboard ?? true) {
    const assets = loadDashboard();
    if (assets === undefined) logger.warn('the dashboard is not built (npm run build makes dist/ui): serving the API only');
    else handler = withDashboard(assets, handler);
  }

  const tls = options.tls;
  const server: http.Server | http2.Http2SecureServer =
    tls === undefined
      ? http.createServer(handler as http.RequestListener)
      : http2.createSecureServer(
          {
            cert: readPem(tls.cert),
            key: readPem(tls.key),
            allowHTTP1: true,
            ...(tls.clientCa === undefined ? {} : { ca: readPem(tls.clientCa), requestCert: true, rejectUnauthorized: true }),
          },
          handler as never,
        );
  // Connections, and how many calls each carries, so a shutdown can close the idle ones at once
  // (fetch keeps a spare connection open that has never carried a request).
  const sockets = new Map<Socket, number>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;
  server.on(tls === undefined ? 'connection' : 'secureConnection', (socket: Socket) => {
    sockets.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    sockets.delete(session.socket as Socket); // an HTTP/2 session closes itself (GOAWAY) when asked
    session.once('close', () => sessions.delete(session));
  });
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    const socket = request.socket;
    if (request.httpVersionMajor !== 1 || !sockets.has(socket)) return;
    sockets.set(socket, sockets.get(socket)! + 1);
    response.once('close', () => {
      const calls = sockets.get(socket);
      if (calls === undefined) return;
      sockets.set(socket, calls - 1);
      if (closing && calls === 1) socket.end();
    });
  });

  return {
    listen(address) {
      const { host, port } = parseHttpAddress(address);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const bound = (server.address() as { port: number }).port;
          logger.info({ address, port: bound, tls: tls !== undefined, cors: options.corsOrigins ?? [] }, 'HTTP listening (Connect, gRPC-Web)');
          resolve(bound);
        });
      });
    },
    async close(graceMs) {
      if (!server.listening) return;
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const [socket, calls] of sockets) if (calls === 0) socket.end();
      for (const session of sessions) session.close();
      const timer = setTimeout(() => {
        logger.warn({ open: sockets.size + sessions.size }, 'HTTP grace period over; closing the remaining connections');
        for (const socket of sockets.keys()) socket.destroy();
        for (const session of sessions) session.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
