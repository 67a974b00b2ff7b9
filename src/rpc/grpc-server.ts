import { createRequire } from 'node:module';
import { Server, ServerCredentials, type ChannelOptions, type ServiceDefinition, type UntypedHandleCall } from '@grpc/grpc-js';
import type { CompatServiceDefinition, ServerMiddleware } from 'nice-grpc';

/**
 * nice-grpc's createServer, with room beside its services for plain grpc-js
 * handlers on the same port. nice-grpc makes its grpc-js Server inside
 * listen() and gives no way to add a handler of one's own; a unary call that
 * goes through nice-grpc's call context and middleware chain costs the
 * server tens of µs more than a grpc-js handler (BENCHMARKS.md, the gateway),
 * which is what the gateway's hot unary methods use instead (`unary.ts`).
 * nice-grpc services are served by nice-grpc's own per-method handlers,
 * exactly as its createServer serves them.
 */

type NiceMethod = { path: string; requestStream: boolean; responseStream: boolean };
type HandlerFactory = (definition: NiceMethod, implementation: (...args: never[]) => unknown, middleware: ServerMiddleware | undefined) => UntypedHandleCall;

// Internal to nice-grpc (no typings): the functions its createServer runs, in the 2.1 layout. package.json
// takes patch releases only (~2.1), and every test that starts a server loads these, so a move fails loudly.
const require = createRequire(import.meta.url);
const definitions = require('nice-grpc/lib/service-definitions/index.js') as {
  normalizeServiceDefinition(definition: CompatServiceDefinition): Record<string, NiceMethod>;
  toGrpcJsServiceDefinition(definition: Record<string, NiceMethod>): ServiceDefinition;
};
const handlers = {
  unary: (require('nice-grpc/lib/server/handleUnaryCall.js') as { createUnaryMethodHandler: HandlerFactory }).createUnaryMethodHandler,
  serverStreaming: (require('nice-grpc/lib/server/handleServerStreamingCall.js') as { createServerStreamingMethodHandler: HandlerFactory })
    .createServerStreamingMethodHandler,
  clientStreaming: (require('nice-grpc/lib/server/handleClientStreamingCall.js') as { createClientStreamingMethodHandler: HandlerFactory })
    .createClientStreamingMethodHandler,
  bidiStreaming: (require('nice-grpc/lib/server/handleBidiStreamingCall.js') as { createBidiStreamingMethodHandler: HandlerFactory })
    .createBidiStreamingMethodHandler,
};

/** Wraps every nice-grpc handler: to hand on what grpc-js knows of the call and nice-grpc's context does not (the deadline). */
export type HandlerWrapper = (handler: UntypedHandleCall) => UntypedHandleCall;

export interface GrpcServer {
  /** A nice-grpc service, its calls through `middleware`. */
  add(definition: CompatServiceDefinition, implementation: object, middleware: ServerMiddleware | undefined): void;
  /** grpc-js handlers, as `grpc.Server.addService` takes them. */
  addGrpcJs(definition: ServiceDefinition, implementation: Record<string, UntypedHandleCall>): void;
  listen(address: string, credentials?: ServerCredentials): Promise<number>;
  /** Stops taking calls and waits for the open ones. */
  shutdown(): Promise<void>;
  forceShutdown(): void;
}

export function createGrpcServer(options: ChannelOptions, wrap: HandlerWrapper = (handler) => handler): GrpcServer {
  const server = new Server(options);
  let listening = false;
  const notYet = (what: string) => {
    if (listening) throw new Error(`${what} must be called before listen()`);
  };
  return {
    add(definition, implementation, middleware) {
      notYet('add()');
      const normalized = definitions.normalizeServiceDefinition(definition);
      const grpcImplementation: Record<string, UntypedHandleCall> = {};
      for (const [name, method] of Object.entries(normalized)) {
        const own = (implementation as Record<string, (...args: never[]) => unknown>)[name];
        if (own === undefined) throw new Error(`the implementation has no method ${name} (${method.path})`);
        const factory = method.requestStream
          ? method.responseStream
            ? handlers.bidiStreaming
            : handlers.clientStreaming
          : method.responseStream
            ? handlers.serverStreaming
            : handlers.unary;
        grpcImplementation[name] = wrap(factory(method, own.bind(implementation), middleware));
      }
      server.addService(definitions.toGrpcJsServiceDefinition(normalized), grpcImplementation);
    },
    addGrpcJs(definition, implementation) {
      notYet('addGrpcJs()');
      server.addService(definition, implementation);
    },
    listen(address, credentials = ServerCredentials.createInsecure()) {
      listening = true;
      return new Promise((resolve, reject) => server.bindAsync(address, credentials, (error, port) => (error ? reject(error) : resolve(port))));
    },
    shutdown() {
      return new Promise((resolve, reject) => server.tryShutdown((error) => (error ? reject(error) : resolve())));
    },
    forceShutdown() {
      server.forceShutdown();
    },
  };
}
