import { isAbortError } from 'abort-controller-x';
import { ServerError, Status, type CallContext, type ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';

/** Told what the log lines say: for metrics. */
export interface CallObserver {
  /** A call ended with this code after this long. */
  ended(method: string, code: Status, seconds: number): void;
  /** A streaming call opened (+1) or ended (-1); unary calls are not told. */
  streams?(method: string, delta: 1 | -1): void;
}

type LogContext = { log: Logger; logFields: (fields: Readonly<Record<string, unknown>>) => void };

/**
 * One structured log line per call: method, status code, duration, peer,
 * and what the handler added with `logFields` (info for calls, error for
 * INTERNAL/UNKNOWN). Adds `log`, a logger bound to the call, made only if
 * the handler uses it: on a busy server a child logger per call costs more
 * than many handlers.
 */
export function loggingMiddleware(logger: Logger, observe?: CallObserver): ServerMiddleware<LogContext> {
  return async function* logging(call, context: CallContext) {
    const start = performance.now();
    const method = call.method.path;
    let log: Logger | undefined;
    let fields: Record<string, unknown> | undefined;
    const withLog = Object.defineProperties(context, {
      log: { get: () => (log ??= logger.child({ method, peer: context.peer, ...fields })), enumerable: true, configurable: true },
      logFields: { value: (more: Readonly<Record<string, unknown>>) => void (fields = { ...fields, ...more }), enumerable: true, configurable: true },
    }) as CallContext & LogContext;
    let code: number = Status.OK;
    let details: string | undefined;
    const stream = observe?.streams !== undefined && (call.method.requestStream || call.method.responseStream);
    if (stream) observe.streams!(method, 1);
    try {
      return yield* call.next(call.request, withLog);
    } catch (error) {
      if (error instanceof ServerError) {
        code = error.code;
        details = error.details;
      } else if (isAbortError(error)) {
        code = Status.CANCELLED;
      } else {
        code = Status.UNKNOWN;
      }
      throw error;
    } finally {
      if (stream) observe.streams!(method, -1);
      observe?.ended(method, code, (performance.now() - start) / 1000);
      const failed = code === Status.INTERNAL || code === Status.UNKNOWN;
      if (logger.isLevelEnabled(failed ? 'error' : 'info')) {
        const line = {
          method,
          peer: context.peer,
          code: Status[code],
          durationMs: Math.round((performance.now() - start) * 1000) / 1000,
          ...fields,
          ...(details === undefined ? {} : { details }),
        };
        if (failed) logger.error(line, 'call failed');
        else logger.info(line, 'call');
      }
    }
  };
}
