import type { CallContext, ServerMiddleware } from 'nice-grpc';

/** Gives every handler the server's `draining` signal, aborted when shutdown begins. */
export function drainingMiddleware(draining: AbortSignal): ServerMiddleware<{ draining: AbortSignal }> {
  return async function* addDraining(call, context: CallContext) {
    return yield* call.next(call.request, { ...context, draining });
  };
}
