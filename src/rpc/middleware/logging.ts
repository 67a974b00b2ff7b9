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

/** One call's log line and metrics, from its start to `end`. */
export interface CallRecord extends LogContext {
  /** Tells the observer and writes the line: the code the caller gets, and the details of a failure. */
  end(code: Status, details?: string): void;
}

/**
 * The rules of a call's record, kept in one place for every way a call is
 * served (nice-grpc's middleware below, the plain grpc-js unary path in
 * unary.ts, the HTTP listener through the middleware): a line per call with
 * method, status code, duration, peer and what the handler added with
 * `logFields` (info for calls, error for INTERNAL/UNKNOWN), the observer
 * told the code and duration, and a streaming call counted while open.
 * `log`, a logger bound to the call, is made only if the handler uses it: on
 * a busy server a child logger per call costs more than many handlers.
 */
export function recordCall(logger: Logger, observe: CallObserver | undefined, method: string, peer: () => string, stream: boolean): CallRecord {
  const start = performance.now();
  let log: Logger | undefined;
  let fields: Record<string, unknown> | undefined;
  const counted = stream && observe?.streams !== undefined;
  if (counted) observe.streams!(method, 1);
  return {
    get log() {
      return (log ??= logger.child({ method, peer: peer(), ...fields }));
    },
    logFields: (more) => void (fields = { ...fields, ...more }),
    end(code, details) {
      if (counted) observe.streams!(method, -1);
      observe?.ended(method, code, (performance.now() - start) / 1000);
      const failed = code === Status.INTERNAL || code === Status.UNKNOWN;
      if (logger.isLevelEnabled(failed ? 'error' : 'info')) {
        const line = {
          method,
          peer: peer(),
          code: Status[code],
          durationMs: Math.round((performance.now() - start) * 1000) / 1000,
          ...fields,
          ...(details === undefined ? {} : { details }),
        };
        if (failed) logger.error(line, 'call failed');
        else logger.info(line, 'call');
      }
    },
  };
}

/** The code and details a caller gets for what a handler threw, after errorMiddleware's mapping. */
export function statusOf(error: unknown): { code: Status; details: string | undefined } {
  if (error instanceof ServerError) return { code: error.code, details: error.details };
  if (isAbortError(error)) return { code: Status.CANCELLED, details: undefined };
  return { code: Status.UNKNOWN, details: undefined };
}

/** `recordCall` as nice-grpc middleware: adds `log` and `logFields` to the context. */
export function loggingMiddleware(logger: Logger, observe?: CallObserver): ServerMiddleware<LogContext> {
  return async function* logging(call, context: CallContext) {
    const record = recordCall(logger, observe, call.method.path, () => context.peer, call.method.requestStream || call.method.responseStream);
    const withLog = Object.defineProperties(context, {
      log: { get: () => record.log, enumerable: true, configurable: true },
      logFields: { value: record.logFields, enumerable: true, configurable: true },
    }) as CallContext & LogContext;
    let code: Status = Status.OK;
    let details: string | undefined;
    try {
      return yield* call.next(call.request, withLog);
    } catch (error) {
      ({ code, details } = statusOf(error));
      throw error;
    } finally {
      record.end(code, details);
    }
  };
}
