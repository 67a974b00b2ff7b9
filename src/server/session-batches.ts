import type { SessionResponse } from '../../gen/ts/taskwire/v1/task_service.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type OutboxLimits } from '../rpc/index.js';

/** Field tags, lengths, ids and states of one ack or outcome, over-counted. */
const ITEM_OVERHEAD = 128;

function responseBytes(message: Partial<SessionResponse>): number {
  let bytes = (message.acks?.length ?? 0) * ITEM_OVERHEAD;
  for (const ack of message.acks ?? []) bytes += (ack.error?.message.length ?? 0) * 3;
  for (const outcome of message.outcomes ?? []) {
    bytes += ITEM_OVERHEAD + (outcome.output === undefined ? 0 : outcome.output.typeUrl.length * 3 + outcome.output.value.length);
    bytes += (outcome.error?.message.length ?? 0) * 3;
  }
  return bytes;
}

/**
 * How a Session's acks and outcomes are cut into messages: what one turn
 * queues goes out in messages of at most a quarter of the default message
 * limit (16 MiB), so 32 outcomes of 1 MB each do not become one message the
 * client cannot take (its stream would fail, and fail again on every
 * re-follow, and the results never arrive).
 */
export const SESSION_RESPONSE_LIMITS: OutboxLimits<Partial<SessionResponse>> = {
  maxItems: 10_000,
  maxBytes: Math.floor(DEFAULT_MAX_MESSAGE_BYTES / 4),
  bytes: responseBytes,
};
