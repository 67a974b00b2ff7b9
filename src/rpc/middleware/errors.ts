import { isAbortError } from 'abort-controller-x';
import { ServerError, Status, type CallContext, type ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';
import { TaskwireError } from '../../errors.js';

/**
 * What a handler's error becomes at the edge, once, for every way a call is
 * served: a ServerError or an abort stays as it is, a TaskwireError keeps
 * its code and message, and an unexpected exception is logged with its
 * stack and reaches the caller as INTERNAL without it.
 */
export function toServerError(error: unknown, log: () => Logger): unknown {
  if (error instanceof ServerError || isAbortError(error)) return error;
  if (error instanceof TaskwireError) return new ServerError(error.code, error.message);
  log().error({ err: error }, 'unexpected error in handler');
  return new ServerError(Status.INTERNAL, 'internal server error; the server log has the details');
}

/** `toServerError` as nice-grpc middleware. */
export const errorMiddleware: ServerMiddleware<{}, { log: Logger }> = async function* errors(
  call,
  context: CallContext & { log: Logger },
) {
  try {
    return yield* call.next(call.request, context);
  } catch (error) {
    throw toServerError(error, () => context.log);
  }
};
