import { ServerError, Status, type CallContext, type ServerMiddleware } from 'nice-grpc';
import type { Principal } from '../context.js';

/**
 * Decides who a caller is and whether it may call a method. Returning a
 * principal admits the call; throwing a ServerError (UNAUTHENTICATED,
 * PERMISSION_DENIED) refuses it.
 */
export type AuthHook = (request: {
  readonly method: string;
  readonly token: string | undefined;
  readonly peer: string;
}) => Principal | Promise<Principal>;

/** Methods open to everyone even when auth is on (health checks). */
const PUBLIC_PREFIXES = ['/grpc.health.v1.Health/'];

/**
 * The caller behind an `authorization` header value, as the hook decides:
 * a principal, or a ServerError (UNAUTHENTICATED, PERMISSION_DENIED). Open
 * methods (health) and servers without a hook admit everyone with none.
 * Shared by the gRPC middleware and the HTTP listener.
 */
export async function authenticate(
  hook: AuthHook | undefined,
  request: { readonly method: string; readonly authorization: string | undefined; readonly peer: string },
): Promise<Principal | undefined> {
  const { method, authorization, peer } = request;
  if (hook === undefined || PUBLIC_PREFIXES.some((prefix) => method.startsWith(prefix))) return undefined;
  const match = authorization === undefined ? null : /^Bearer\s+(.+)$/i.exec(authorization);
  if (authorization !== undefined && match === null) {
    throw new ServerError(Status.UNAUTHENTICATED, 'the authorization header must be "Bearer <token>"');
  }
  return hook({ method, token: match?.[1], peer });
}

/**
 * Reads a bearer token from the `authorization` metadata and asks the hook.
 * Without a hook (the default) every call is admitted with no principal.
 */
export function authMiddleware(hook: AuthHook | undefined): ServerMiddleware<{ principal: Principal | undefined }> {
  return async function* auth(call, context: CallContext) {
    const extended = context as CallContext & { principal: Principal | undefined };
    extended.principal = await authenticate(hook, {
      method: call.method.path,
      authorization: context.metadata.get('authorization'),
      peer: context.peer,
    });
    return yield* call.next(call.request, extended);
  };
}
