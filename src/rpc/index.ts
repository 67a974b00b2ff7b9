/** The extension API: the transport the server, client and worker stand on. It may change between minor versions; applications import taskwire, taskwire/client, taskwire/worker or taskwire/server. */
export type { Principal, TaskwireCallContext } from './context.js';
export { createRpcServer, type RpcServer, type RpcServerOptions, type ShutdownResult } from './server.js';
export type { UnaryCallContext, UnaryHandler } from './unary.js';
export { createRpcChannel, createRpcClient, type RpcChannelOptions, type RpcClient, type RpcClientOptions } from './client.js';
export type { AuthHook } from './middleware/auth.js';
export type { DeadlineCallOptions } from './middleware/client-deadline.js';
export { DEFAULT_MAX_MESSAGE_BYTES } from './options.js';
export type { TlsClientOptions, TlsServerOptions } from './tls.js';
export { onShutdownSignals } from './signals.js';
export { Outbox, type OutboxLimits } from './outbox.js';
export { ReconnectBackoff } from './backoff.js';
export { withExactMessages } from './exact-messages.js';
// For the HTTP listener (src/http), which runs the same layers over Connect.
export { authenticate } from './middleware/auth.js';
export { errorMiddleware } from './middleware/errors.js';
export { loggingMiddleware, type CallObserver } from './middleware/logging.js';
export { pem as readPem } from './tls.js';
