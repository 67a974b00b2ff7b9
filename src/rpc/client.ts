import {
  createChannel,
  createClientFactory,
  type Channel,
  type Client,
  type ClientMiddleware,
  type CompatServiceDefinition,
} from 'nice-grpc';
import { clientAuthMiddleware } from './middleware/client-auth.js';
import { clientDeadlineMiddleware, type DeadlineCallOptions } from './middleware/client-deadline.js';
import { clientChannelOptions, type TransportOptions } from './options.js';
import { createChannelCredentials, type TlsClientOptions } from './tls.js';

export interface RpcChannelOptions extends TransportOptions {
  readonly tls?: TlsClientOptions;
}

/** Spread calls (and so worker and session streams) over every address, not just the first that answers. */
const ROUND_ROBIN = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

/**
 * A channel to one server (`host:port`), or to several: a comma-separated
 * list (`10.0.0.1:50051,10.0.0.2:50051`) or a DNS name with several
 * addresses (`dns:///taskwire.internal:50051`), with round-robin over them.
 */
export function createRpcChannel(address: string, options: RpcChannelOptions = {}): Channel {
  const several = address.includes(',');
  const target = several && !/^[a-z0-9]+:/.test(address.split(',')[0]!.replace(/:\d+$/, '')) ? `ipv4:${address}` : address;
  const balanced = several || address.startsWith('dns:');
  return createChannel(target, createChannelCredentials(options.tls), {
    ...clientChannelOptions(options),
    ...(balanced ? { 'grpc.service_config': ROUND_ROBIN } : {}),
  });
}

export interface RpcClientOptions {
  /** Bearer token sent with every call. */
  readonly token?: string;
  /** Runs innermost, next to the call (the typed client's error mapping). */
  readonly middleware?: ClientMiddleware;
}

export type RpcClient<Service extends CompatServiceDefinition> = Client<Service, DeadlineCallOptions>;

/** A typed client whose calls accept `deadline` and carry the token, if any. */
export function createRpcClient<Service extends CompatServiceDefinition>(
  definition: Service,
  channel: Channel,
  options: RpcClientOptions = {},
): RpcClient<Service> {
  let factory = createClientFactory().use(clientDeadlineMiddleware);
  if (options.token !== undefined) factory = factory.use(clientAuthMiddleware(options.token));
  if (options.middleware !== undefined) factory = factory.use(options.middleware);
  return factory.create(definition, channel);
}
