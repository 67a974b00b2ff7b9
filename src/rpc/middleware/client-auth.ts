import { Metadata, type CallOptions, type ClientMiddleware } from 'nice-grpc';

/** Sends `authorization: Bearer <token>` with every call. */
export function clientAuthMiddleware(token: string): ClientMiddleware {
  return async function* bearer(call, options: CallOptions) {
    const metadata = Metadata(options.metadata);
    metadata.set('authorization', `Bearer ${token}`);
    return yield* call.next(call.request, { ...options, metadata });
  };
}
