import { isAbortError } from 'abort-controller-x';
import { ServerError, Status, type CallContext, type ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';

/**
 * One structured log line per call: method, status code, duration, peer.
 * Adds `log`, a child logger bound to the call, to the handler's context.
 */
export function loggingMiddleware(logger: Logger): ServerMiddleware<{ log: Logger }> {
  return async function* logging(call, context: CallContext) {
    const start = performance.now();
    const log = logger.child({ method: call.method.path, peer: context.peer });
    let code: number = Status.OK;
    let details: string | undefined;
    try {
      if (call.requestStream || call.responseStream) log.debug('stream opened');
      return yield* call.next(call.request, { ...context, log });
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
      const durationMs = Math.round((performance.now() - start) * 1000) / 1000;
      const line = { code: Status[code], durationMs, ...(details === undefined ? {} : { details }) };
      if (code === Status.INTERNAL || code === Status.UNKNOWN) log.error(line, 'call failed');
      else log.info(line, 'call');
    }
  };
}
