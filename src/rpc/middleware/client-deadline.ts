import { ClientError, Metadata, Status, type CallOptions, type ClientMiddleware } from 'nice-grpc';
import { MAX_TIMER_MS, timeoutSignal } from '../../timers.js';

export interface DeadlineCallOptions {
  /** When the call must be done: a Date, or milliseconds from now. */
  readonly deadline?: Date | number;
}

/**
 * grpc-timeout takes at most 8 digits. grpc-js servers (1.14) read it into a
 * 32-bit integer, so a timeout past 2^31-1 ms (24.8 days) would end the call
 * at once: the server is told at most that; the local timer keeps the rest.
 */
function timeoutHeader(ms: number): string {
  const value = Math.max(1, Math.min(Math.ceil(ms), MAX_TIMER_MS));
  return value < 1e8 ? `${value}m` : `${Math.min(Math.ceil(value / 1000), Math.floor(MAX_TIMER_MS / 1000))}S`;
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
  const timer = timeoutSignal(remaining);
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
