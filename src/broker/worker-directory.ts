import type { Logger } from 'pino';
import type { SharedWorkers, WorkerEntry } from '../store/index.js';
import type { WorkerSession } from './session.js';
import type { WorkerSnapshot } from './types.js';

/** How long a replica's announcement of its sessions lives without a refresh. */
export const WORKER_ENTRY_TTL_MS = 15_000;
/** How often a replica refreshes its sessions' entries: three chances before they expire. */
const REFRESH_MS = WORKER_ENTRY_TTL_MS / 3;

export interface WorkerDirectory {
  connected(session: WorkerSession): void;
  disconnected(session: WorkerSession): void;
  /** This server's sessions, then every other replica's (a store shared by replicas). */
  list(): Promise<WorkerSnapshot[]>;
  /** Stops refreshing and removes this server's entries (a clean shutdown). */
  close(): Promise<void>;
}

/**
 * Who is connected where. With a store one server owns (SQLite) the answer
 * is this server's memory. With a shared store (PostgreSQL) each replica
 * writes its sessions to the store on connect, removes them on disconnect and
 * refreshes them every REFRESH_MS with an expiry of WORKER_ENTRY_TTL_MS: a
 * replica killed without a word drops out of every answer within the TTL,
 * with no replica having to wait on another to answer.
 */
export function createWorkerDirectory(options: {
  readonly replica: string;
  readonly sessions: ReadonlyMap<string, WorkerSession>;
  readonly shared: SharedWorkers | undefined;
  readonly logger: Logger;
}): WorkerDirectory {
  const { replica, sessions, shared, logger } = options;
  const local = (): WorkerSnapshot[] => [...sessions.values()].map((session) => ({ ...session.snapshot(), replica }));
  let failing = false;
  const report = (what: string) => (error: unknown) => {
    if (!failing) logger.warn({ err: error }, `could not ${what} the shared worker list; tried again on the next refresh`);
    failing = true;
  };
  /** Writes go one after another, so a session's removal cannot overtake its announcement. */
  let writes = Promise.resolve();
  const enqueue = (write: () => Promise<void>) => (writes = writes.then(write));
  const put = (entries: readonly WorkerEntry[]) => {
    if (shared === undefined || entries.length === 0) return;
    void enqueue(() => shared.put(entries, Date.now() + WORKER_ENTRY_TTL_MS).then(() => {
          failing = false;
        }, report('write')));
  };
  const timer = shared === undefined ? undefined : setInterval(() => put(local()), REFRESH_MS);
  timer?.unref();

  return {
    connected(session) {
      put([{ ...session.snapshot(), replica }]);
    },

    disconnected(session) {
      if (shared !== undefined) void enqueue(() => shared.remove([session.id]).catch(report('update')));
    },

    async list() {
      const mine = local();
      if (shared === undefined) return mine;
      const others = (await shared.list(Date.now())).filter((entry) => entry.replica !== replica);
      return [...mine, ...others];
    },

    async close() {
      if (timer !== undefined) clearInterval(timer);
      if (shared !== undefined) await enqueue(() => shared.remove([...sessions.keys()]).catch(report('update')));
    },
  };
}
