import { ClientError, Metadata, Status, type CallOptions, type ClientMiddleware } from 'nice-grpc';

export interface DeadlineCallOptions {
  /** When the call must be done: a Date, or milliseconds from now. */
  readonly deadline?: Date | number;
}

/** grpc-timeout takes at most 8 digits. */
function timeoutHeader(ms: number): string {
  const value = Math.max(1, Math.ceil(ms));
  return value < 1e8 ? `${value}m` : `${Math.ceil(value / 1000)}S`;
}

/**
 * A deadline the server can see: sends `grpc-timeout` (so the handler's
 * signal aborts and the server ends the call with DEADLINE_EXCEEDED) and
 * keeps a local timer for when the server cannot answer at all.
 */
export const clientDeadlineMiddleware: ClientMiddleware<DeadlineCallOptions> = async function* deadline(
  call,
  options: CallOptions & DeadlineCallOptions,
) {
  if (options.deadline === undefined) return yield* call.next(call.request, options);
  const { deadline: when, ...rest } = options;

  const remaining = Math.max(0, (when instanceof Date ? when.getTime() : Date.now() + when) - Date.now());
  const metadata = Metadata(rest.metadata);
  metadata.set('grpc-timeout', timeoutHeader(remaining));
  const timer = AbortSignal.timeout(remaining);
  const signal = rest.signal === undefined ? timer : AbortSignal.any([rest.signal, timer]);
  try {
    return yield* call.next(call.request, { ...rest, metadata, signal });
  } catch (error) {
    // The local timer fired first (the server is slow or unreachable).
    if (!(error instanceof ClientError) && timer.aborted && !rest.signal?.aborted) {
      throw new ClientError(call.method.path, Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
    }
    throw error;
  }
};
