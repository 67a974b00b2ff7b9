import type { CallContext, ServerMiddleware } from 'nice-grpc';
import type { ServerInterceptor } from '@grpc/grpc-js';
import { ServerInterceptingCall } from '@grpc/grpc-js';

/**
 * grpc-js parses the caller's `grpc-timeout` and strips it from the metadata
 * nice-grpc sees; this interceptor hands the resulting deadline on in a
 * header of our own (overwriting any a caller sent).
 */
export const DEADLINE_HEADER = 'taskwire-internal-deadline-ms';

export const deadlineInterceptor: ServerInterceptor = (_method, call) =>
  new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata, mdNext) {
          const deadline = call.getDeadline();
          const ms = deadline instanceof Date ? deadline.getTime() : deadline;
          if (Number.isFinite(ms)) metadata.set(DEADLINE_HEADER, String(ms));
          else metadata.remove(DEADLINE_HEADER);
          mdNext(metadata);
        },
      });
    },
  });

/**
 * Gives the handler the caller's deadline and a `signal` that also aborts
 * when the deadline passes.
 */
export const deadlineMiddleware: ServerMiddleware<{ deadline: Date | undefined }> = async function* deadline(
  call,
  context: CallContext,
) {
  const raw = context.metadata.get(DEADLINE_HEADER);
  context.metadata.delete(DEADLINE_HEADER);
  if (raw === undefined) return yield* call.next(call.request, { ...context, deadline: undefined });

  const at = new Date(Number(raw));
  const controller = new AbortController();
  const abort = () => controller.abort();
  context.signal.addEventListener('abort', abort, { once: true });
  const timer = setTimeout(abort, Math.max(0, at.getTime() - Date.now()));
  try {
    return yield* call.next(call.request, { ...context, signal: controller.signal, deadline: at });
  } finally {
    clearTimeout(timer);
    context.signal.removeEventListener('abort', abort);
  }
};
