import type { ConnectRequest } from '../../gen/ts/taskwire/v1/worker_service.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type OutboxLimits } from '../rpc/index.js';

/** Field tags, ids, attempts and codes of one item, over-counted. */
const ITEM_OVERHEAD = 128;

function requestBytes(message: Partial<ConnectRequest>): number {
  let bytes = ITEM_OVERHEAD + (message.hello?.resume.length ?? 0) * ITEM_OVERHEAD;
  for (const c of message.completes ?? []) bytes += ITEM_OVERHEAD + (c.output === undefined ? 0 : c.output.typeUrl.length * 3 + c.output.value.length);
  for (const f of message.fails ?? []) bytes += ITEM_OVERHEAD + f.message.length * 3;
  for (const p of message.progress ?? []) bytes += ITEM_OVERHEAD + p.message.length * 3;
  bytes += (message.releases?.length ?? 0) * ITEM_OVERHEAD;
  return bytes;
}

/**
 * How what one turn queues for the server is cut into messages: at most a
 * quarter of the default message limit (16 MiB) each, so many large outputs
 * finishing together (or sent again after a reconnect) do not become one
 * message past the server's limit, failing the stream on every try.
 */
export const WORKER_REQUEST_LIMITS: OutboxLimits<Partial<ConnectRequest>> = {
  maxItems: 100_000,
  maxBytes: Math.floor(DEFAULT_MAX_MESSAGE_BYTES / 4),
  bytes: requestBytes,
};
