import type { ConnectResponse } from '../../gen/ts/taskwire/v1/worker_service.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type OutboxLimits } from '../rpc/index.js';

/** Field tags, ids, attempts and deadlines of one item, over-counted. */
const ITEM_OVERHEAD = 256;

function responseBytes(message: Partial<ConnectResponse>): number {
  let bytes = ITEM_OVERHEAD;
  for (const a of message.assignments ?? []) {
    bytes += ITEM_OVERHEAD + a.type.length * 3 + (a.input === undefined ? 0 : a.input.typeUrl.length * 3 + a.input.value.length);
    for (const [key, value] of Object.entries(a.metadata)) bytes += (key.length + value.length) * 3 + 8;
  }
  for (const c of message.cancels ?? []) bytes += ITEM_OVERHEAD + c.reason.length * 3;
  bytes += ((message.acknowledged?.length ?? 0) + (message.rejected?.length ?? 0)) * ITEM_OVERHEAD;
  return bytes;
}

/**
 * How what is queued for one worker in one turn is cut into messages: at
 * most a quarter of the default message limit (16 MiB) each, so a claim of
 * many large inputs does not become one message past the worker's limit
 * (the stream would fail and every attempt on it with it).
 */
export const WORKER_RESPONSE_LIMITS: OutboxLimits<Partial<ConnectResponse>> = {
  maxItems: 100_000,
  maxBytes: Math.floor(DEFAULT_MAX_MESSAGE_BYTES / 4),
  bytes: responseBytes,
};
