import type { ChannelOptions } from '@grpc/grpc-js';

/** Default largest message, either way: 16 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Keepalive for long-lived streams behind load balancers and NATs: a ping
 * every 30 s on an idle connection keeps middleboxes from dropping it, and a
 * peer that does not answer within 10 s is declared dead so its streams end.
 */
export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;

/**
 * How soon a client channel tries the server again after a failed connect:
 * from 100 ms, growing ×1.6 (±20 % jitter) to at most 5 s. grpc-js's own
 * defaults (1 s to 120 s) leave a client that lived through a long outage
 * waiting up to two minutes after the server is back, and a channel in that
 * backoff fails every call at once, whatever the caller's own retry loop does.
 */
export const RECONNECT_MIN_MS = 100;
export const RECONNECT_MAX_MS = 5_000;
/** grpc-js adds up to +20 % to each backoff: the cap is set below the promised bound by that much. */
const BACKOFF_JITTER = 1.2;

export interface TransportOptions {
  /** Largest message accepted or sent, in bytes. */
  readonly maxMessageBytes?: number;
  /** Reconnect backoff bounds of a client channel. Default 100 ms .. 5 s. */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

/** What both ends set: message size and keepalive. */
function transportChannelOptions(options: TransportOptions): ChannelOptions {
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  return {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

export function serverChannelOptions(options: TransportOptions & { maxConnectionAgeMs?: number }): ChannelOptions {
  return {
    ...transportChannelOptions(options),
    // Clients ping idle connections too; accept their pings instead of GOAWAY-ing them.
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    ...(options.maxConnectionAgeMs === undefined ? {} : { 'grpc.max_connection_age_ms': options.maxConnectionAgeMs }),
  };
}

export function clientChannelOptions(options: TransportOptions): ChannelOptions {
  const min = options.reconnectMinMs ?? RECONNECT_MIN_MS;
  const max = Math.max(min, Math.floor((options.reconnectMaxMs ?? RECONNECT_MAX_MS) / BACKOFF_JITTER));
  return {
    ...transportChannelOptions(options),
    'grpc.initial_reconnect_backoff_ms': min,
    'grpc.max_reconnect_backoff_ms': max,
  };
}
