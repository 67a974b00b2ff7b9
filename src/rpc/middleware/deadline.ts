import type { CallContext, ServerMiddleware } from 'nice-grpc';
import type { Metadata, UntypedHandleCall } from '@grpc/grpc-js';
import type { Principal } from '../context.js';
import { setLongTimeout } from '../../timers.js';

/**
 * grpc-js parses the caller's `grpc-timeout` and strips it from the metadata
 * nice-grpc sees; `withCallDeadline` hands the resulting deadline on in a
 * header of our own (overwriting any a caller sent).
 */
export const DEADLINE_HEADER = 'taskwire-internal-deadline-ms';

/** The caller's deadline as grpc-js parsed it: a Date, or undefined when it sent none. */
export function deadlineOf(call: { getDeadline(): Date | number }): Date | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}

/** Wraps a nice-grpc method handler (grpc-server.ts) so that its context learns the deadline: see DEADLINE_HEADER. */
export function withCallDeadline(handler: UntypedHandleCall): UntypedHandleCall {
  return ((call: { metadata: Metadata; getDeadline(): Date | number }, ...rest: unknown[]) => {
    const deadline = deadlineOf(call);
    if (deadline === undefined) call.metadata.remove(DEADLINE_HEADER);
    else call.metadata.set(DEADLINE_HEADER, String(deadline.getTime()));
    return (handler as (...args: unknown[]) => unknown)(call, ...rest);
  }) as UntypedHandleCall;
}

/**
 * What the server knows about a call beyond nice-grpc's context: the
 * caller's deadline (and a `signal` that also aborts when it passes), and
 * the server's `draining` signal, aborted when shutdown begins. Added to the
 * context object in place: a copy per middleware layer shows on unary calls.
 */
export function callContextMiddleware(
  draining: AbortSignal,
): ServerMiddleware<{ deadline: Date | undefined; draining: AbortSignal; principal: Principal | undefined }> {
  return async function* callContext(call, context: CallContext) {
    const extended = context as CallContext & { deadline: Date | undefined; draining: AbortSignal; principal: Principal | undefined };
    extended.draining = draining;
    extended.principal = undefined; // the auth middleware, when there is one, sets it
    const raw = context.metadata.get(DEADLINE_HEADER);
    if (raw === undefined) {
      extended.deadline = undefined;
      return yield* call.next(call.request, extended);
    }
    context.metadata.delete(DEADLINE_HEADER);
    const at = new Date(Number(raw));
    const controller = new AbortController();
    const callSignal = context.signal;
    const abort = () => controller.abort();
    callSignal.addEventListener('abort', abort, { once: true });
    const cancelTimer = setLongTimeout(abort, at.getTime() - Date.now());
    extended.deadline = at;
    extended.signal = controller.signal;
    try {
      return yield* call.next(call.request, extended);
    } finally {
      cancelTimer();
      callSignal.removeEventListener('abort', abort);
    }
  };
}
