import { createClient, type TaskwireClient } from '../client/index.js';
import { Descriptors } from './descriptors.js';
import type { GlobalOptions } from './global-options.js';

/** Wraps a command's action: runs `body` with a client and descriptors, and closes the client after. */
export const clientAction =
  (globals: () => GlobalOptions) =>
  <A extends unknown[]>(body: (client: TaskwireClient, d: Descriptors, g: GlobalOptions, ...args: A) => Promise<void>) =>
  async (...args: A) => {
    const g = globals();
    const client = createClient({ server: g.server, ...(g.token ? { token: g.token } : {}), ...(g.tls ? { tls: g.tls } : {}) });
    try {
      await body(client, new Descriptors(g.descriptorPaths), g, ...args);
    } finally {
      client.close();
    }
  };
