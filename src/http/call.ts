import { fromBinary, toBinary, type DescMethod, type Message } from '@bufbuild/protobuf';
import { Code, ConnectError, createContextKey, type HandlerContext } from '@connectrpc/connect';
import { isAbortError } from 'abort-controller-x';
import { Metadata, ServerError, Status, type CallContext, type ServerMiddleware } from 'nice-grpc';
import { undecodableKey } from './decoding.js';
import type { Logger } from 'pino';
import type { Principal, TaskwireCallContext } from '../rpc/index.js';
import type { ServedMethod } from './methods.js';

/** The caller's address, from the socket (set by the listener for every request). */
export const peerKey = createContextKey('unknown', { description: 'taskwire peer' });
/** Who is calling, set by the listener's auth gate. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: 'taskwire principal' });

/** What every call on the listener shares: the middleware the gRPC server runs, and its drain signal. */
export interface CallEnvironment {
  /** The gRPC server's logging and error layers, composed (the same code, not a copy). */
  readonly middleware: ServerMiddleware<{}, {}>;
  readonly draining: AbortSignal;
  /** For what fails outside the middleware (encoding an answer), which would otherwise go unlogged. */
  readonly logger: Logger;
}

// `log` and `logFields` are added by the logging middleware the call runs through.
type HttpCallContext = CallContext & Omit<TaskwireCallContext, 'log' | 'logFields'> & { flush(): void };

/**
 * A nice-grpc call context made from a Connect one, as the gRPC server's
 * middleware would make it: request headers as metadata, the deadline from
 * `connect-timeout-ms` (or `grpc-timeout` for gRPC-Web), whose passing and a
 * client going away abort `signal`, the drain signal, the principal.
 */
function callContext(handler: HandlerContext, draining: AbortSignal): HttpCallContext {
  const metadata = Metadata();
  handler.requestHeader.forEach((value, key) => {
    if (!key.endsWith('-bin')) metadata.set(key, value);
  });
  const header = Metadata();
  const remaining = handler.timeoutMs();
  /** Response headers go out with the first message (Connect has no early header for unary calls). */
  const flush = () => {
    for (const [key, values] of header) {
      handler.responseHeader.delete(key);
      for (const value of values) if (typeof value === 'string') handler.responseHeader.append(key, value);
    }
  };
  return {
    metadata,
    peer: handler.values.get(peerKey),
    header,
    trailer: Metadata(),
    sendHeader: flush,
    signal: handler.signal,
    deadline: remaining === undefined ? undefined : new Date(Date.now() + remaining),
    draining,
    principal: handler.values.get(principalKey),
    flush,
  };
}

/**
 * An error as Connect sends it, mapped once: the gRPC layer's ServerError
 * keeps its code and message. A call cut short by its deadline or its
 * caller ends with the reason Connect gave (DEADLINE_EXCEEDED, CANCELLED),
 * whatever the handler said on its way out, as grpc-js does.
 */
export function toConnectError(error: unknown, signal?: AbortSignal, logger?: Logger): ConnectError {
  if (signal?.aborted && signal.reason instanceof ConnectError) return signal.reason;
  if (error instanceof ConnectError) return error;
  if (error instanceof ServerError) return new ConnectError(error.details, error.code as number as Code);
  if (isAbortError(error)) return new ConnectError('the call was cancelled', Code.Canceled);
  logger?.error({ err: error }, 'unexpected error answering an HTTP call');
  return new ConnectError('internal server error; the server log has the details', Code.Internal);
}

/**
 * A Connect implementation of one method that runs the gRPC one: the
 * protobuf-es message is encoded and decoded by the method's own codec,
 * passes through the same middleware with a context built the same way, and
 * the answer comes back the same way.
 */
export function adapt(method: ServedMethod, desc: DescMethod, env: CallEnvironment) {
  const descriptor = { path: method.path, requestStream: false, responseStream: method.responseStream, options: {} };
  const run = (request: Message, context: HttpCallContext, undecodable: string | undefined) =>
    env.middleware(
      {
        method: descriptor,
        requestStream: false,
        request: toBinary(desc.input, request),
        responseStream: method.responseStream as false,
        async *next(bytes: unknown, ctx: CallContext) {
          // The same answer as the gRPC server's decoding layer gives.
          if (undecodable !== undefined) throw new ServerError(Status.INVALID_ARGUMENT, `the request is not a valid message for ${method.path}: ${undecodable}`);
          const decoded = method.decode(bytes as Uint8Array);
          if (!method.responseStream) return (await method.implementation(decoded, ctx as never)) as never;
          yield* method.implementation(decoded, ctx as never) as AsyncIterable<never>;
          return undefined as never;
        },
      } as never,
      context,
    );

  if (!method.responseStream) {
    return async (request: Message, handler: HandlerContext) => {
      const context = callContext(handler, env.draining);
      try {
        const result = await run(request, context, handler.values.get(undecodableKey)).next();
        return fromBinary(desc.output, method.encode(result.value));
      } catch (error) {
        throw toConnectError(error, handler.signal, env.logger);
      } finally {
        context.flush();
      }
    };
  }
  return async function* (request: Message, handler: HandlerContext) {
    const context = callContext(handler, env.draining);
    try {
      for await (const message of run(request, context, handler.values.get(undecodableKey)) as AsyncIterable<unknown>) {
        context.flush();
        yield fromBinary(desc.output, method.encode(message));
      }
    } catch (error) {
      throw toConnectError(error, handler.signal, env.logger);
    }
  };
}
