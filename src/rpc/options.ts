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

export interface TransportOptions {
  /** Largest message accepted or sent, in bytes. */
  readonly maxMessageBytes?: number;
}

export function serverChannelOptions(options: TransportOptions & { maxConnectionAgeMs?: number }): ChannelOptions {
  return {
    ...clientChannelOptions(options),
    // Clients ping idle connections too; accept their pings instead of GOAWAY-ing them.
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    ...(options.maxConnectionAgeMs === undefined ? {} : { 'grpc.max_connection_age_ms': options.maxConnectionAgeMs }),
  };
}

export function clientChannelOptions(options: TransportOptions): ChannelOptions {
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  return {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
  };
}
