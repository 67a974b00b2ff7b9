import {
  createChannel,
  createClientFactory,
  type Channel,
  type Client,
  type CompatServiceDefinition,
} from 'nice-grpc';
import { clientAuthMiddleware } from './middleware/client-auth.js';
import { clientDeadlineMiddleware, type DeadlineCallOptions } from './middleware/client-deadline.js';
import { clientChannelOptions, type TransportOptions } from './options.js';
import { createChannelCredentials, type TlsClientOptions } from './tls.js';

export interface RpcChannelOptions extends TransportOptions {
  readonly tls?: TlsClientOptions;
}

/**
 * A channel to one server address (`host:port`), or to several through the
 * resolver (`dns:///name:port` with round-robin across its addresses).
 */
export function createRpcChannel(address: string, options: RpcChannelOptions = {}): Channel {
  return createChannel(address, createChannelCredentials(options.tls), clientChannelOptions(options));
}

export interface RpcClientOptions {
  /** Bearer token sent with every call. */
  readonly token?: string;
}

export type RpcClient<Service extends CompatServiceDefinition> = Client<Service, DeadlineCallOptions>;

/** A typed client whose calls accept `deadline` and carry the token, if any. */
export function createRpcClient<Service extends CompatServiceDefinition>(
  definition: Service,
  channel: Channel,
  options: RpcClientOptions = {},
): RpcClient<Service> {
  const factory = createClientFactory().use(clientDeadlineMiddleware);
  return (options.token === undefined ? factory : factory.use(clientAuthMiddleware(options.token))).create(
    definition,
    channel,
  );
}
