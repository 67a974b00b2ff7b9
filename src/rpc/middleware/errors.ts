import { isAbortError } from 'abort-controller-x';
import { ServerError, Status, type CallContext, type ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';
import { TaskwireError } from '../../errors.js';

/**
 * Maps errors to gRPC statuses, once, at the edge: a TaskwireError keeps its
 * code and message; an unexpected exception is logged with its stack and
 * reaches the caller as INTERNAL without it.
 */
export const errorMiddleware: ServerMiddleware<{}, { log: Logger }> = async function* errors(
  call,
  context: CallContext & { log: Logger },
) {
  try {
    return yield* call.next(call.request, context);
  } catch (error) {
    if (error instanceof ServerError || isAbortError(error)) throw error;
    if (error instanceof TaskwireError) throw new ServerError(error.code, error.message);
    context.log.error({ err: error }, 'unexpected error in handler');
    throw new ServerError(Status.INTERNAL, 'internal server error; the server log has the details');
  }
};
