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
 * Reads a bearer token from the `authorization` metadata and asks the hook.
 * Without a hook (the default) every call is admitted with no principal.
 */
export function authMiddleware(hook: AuthHook | undefined): ServerMiddleware<{ principal: Principal | undefined }> {
  return async function* auth(call, context: CallContext) {
    const extended = context as CallContext & { principal: Principal | undefined };
    extended.principal = undefined;
    const method = call.method.path;
    if (hook === undefined || PUBLIC_PREFIXES.some((prefix) => method.startsWith(prefix))) {
      return yield* call.next(call.request, extended);
    }
    const header = context.metadata.get('authorization');
    const match = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header);
    if (header !== undefined && match === null) {
      throw new ServerError(Status.UNAUTHENTICATED, 'the authorization header must be "Bearer <token>"');
    }
    extended.principal = await hook({ method, token: match?.[1], peer: context.peer });
    return yield* call.next(call.request, extended);
  };
}
