import type { connectNodeAdapter } from '@connectrpc/connect-node';

/** A Node request listener (http or http2), as connect-node's adapter returns it. */
export type NodeHandlerFn = ReturnType<typeof connectNodeAdapter>;
