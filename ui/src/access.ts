import { Code, ConnectError } from '@connectrpc/connect';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

/**
 * Whether the token may use the admin-only methods (RetryTask, listing). The
 * API has no "who am I": an admin-only read that is refused with
 * PERMISSION_DENIED says the role is client; anything else leaves it allowed
 * and lets the server have the last word.
 */
export function useAdmin(): boolean | undefined {
  const [admin, setAdmin] = useState<boolean | undefined>(undefined);
  useEffect(() => {
    const controller = new AbortController();
    api.listWorkers({}, { signal: controller.signal }).then(
      () => setAdmin(true),
      (error) => {
        if (!controller.signal.aborted) setAdmin(ConnectError.from(error).code !== Code.PermissionDenied);
      },
    );
    return () => controller.abort();
  }, []);
  return admin;
}
