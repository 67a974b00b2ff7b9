import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ServerError, Status } from 'nice-grpc';
import type { AuthHook, Principal } from '../rpc/index.js';

/**
 * Who may call what. `client`: the web service (submit, follow, cancel, call
 * task services); `worker`: a worker's Connect stream only; `admin`:
 * everything, including retrying tasks, bulk retry and cancel by filter,
 * listing tasks and workers, and
 * statistics. Health is open to all; reflection to any valid token.
 */
export type Role = 'client' | 'worker' | 'admin';
export const ROLES: readonly Role[] = ['client', 'worker', 'admin'];

export interface TokenEntry {
  readonly role: Role;
  readonly token: string;
  /** Shown in logs; default the role. */
  readonly name?: string;
}

const CLIENT_METHODS = new Set([
  '/taskwire.v1.TaskService/SubmitTask',
  '/taskwire.v1.TaskService/SubmitTasks',
  '/taskwire.v1.TaskService/GetTask',
  '/taskwire.v1.TaskService/WatchTask',
  '/taskwire.v1.TaskService/CancelTask',
  '/taskwire.v1.TaskService/Session',
]);
const WORKER_METHODS = new Set(['/taskwire.v1.WorkerService/Connect']);
const ANY_ROLE_PREFIXES = ['/grpc.reflection.'];

/** The roles allowed to call `method`; gateway methods (registered task services) are the client's. */
export function rolesFor(method: string): readonly Role[] {
  if (WORKER_METHODS.has(method)) return ['worker', 'admin'];
  if (CLIENT_METHODS.has(method)) return ['client', 'admin'];
  if (ANY_ROLE_PREFIXES.some((prefix) => method.startsWith(prefix))) return ROLES;
  if (method.startsWith('/taskwire.v1.')) return ['admin'];
  return ['client', 'admin'];
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Token auth with roles. Tokens are compared by their SHA-256 digests with
 * timingSafeEqual, against every entry, so the time taken says nothing about
 * which token nearly matched.
 */
export function tokenAuth(entries: readonly TokenEntry[]): AuthHook {
  if (entries.length === 0) throw new Error('token auth needs at least one token');
  const known = entries.map((entry) => ({ ...entry, digest: digest(entry.token) }));
  return ({ method, token }) => {
    if (token === undefined) {
      throw new ServerError(Status.UNAUTHENTICATED, 'this server requires a token: send "authorization: Bearer <token>"');
    }
    const presented = digest(token);
    let match: (typeof known)[number] | undefined;
    for (const entry of known) if (timingSafeEqual(entry.digest, presented)) match ??= entry;
    if (match === undefined) throw new ServerError(Status.UNAUTHENTICATED, 'the token is not valid');
    const allowed = rolesFor(method);
    if (!allowed.includes(match.role)) {
      throw new ServerError(Status.PERMISSION_DENIED, `the ${match.role} role may not call ${method}; it needs ${allowed.join(' or ')}`);
    }
    const principal: Principal = { name: match.name ?? match.role, roles: [match.role] };
    return principal;
  };
}

/**
 * Tokens from text: one `role:token` (or `role:token:name`) per line or per
 * comma, `#` comments allowed. Used for `--tokens-file` and TASKWIRE_TOKENS.
 */
export function parseTokens(text: string): TokenEntry[] {
  return text
    .split(/[\n,]/)
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((line) => {
      const [role, token, name] = line.split(':');
      if (!ROLES.includes(role as Role) || !token) {
        throw new Error(`token entry "${role}:…" must be role:token with role one of ${ROLES.join(', ')}`);
      }
      return { role: role as Role, token, ...(name ? { name } : {}) };
    });
}

export function readTokensFile(path: string): TokenEntry[] {
  return parseTokens(readFileSync(path, 'utf8'));
}
