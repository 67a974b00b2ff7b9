import type { Logger } from 'pino';
import type { AttemptRef, CompleteItem, FailItem, ProgressItem, Store } from '../store/index.js';
import type { Dispatcher } from './dispatcher.js';
import type { WorkerSession } from './session.js';

/** What the transport calls for one worker's messages. */
export interface WorkerConnection {
  readonly id: string;
  touch(): void;
  credit(n: number): void;
  complete(items: readonly CompleteItem[]): void;
  fail(items: readonly Omit<FailItem, 'workerId'>[]): void;
  progress(items: readonly ProgressItem[]): void;
  release(refs: readonly AttemptRef[]): void;
  /** Take nothing new on this session (it is being told to drain and reconnect). */
  drain(): void;
  /** The stream ended. */
  closed(): void;
}

export interface ConnectionDeps {
  readonly store: Store;
  readonly logger: Logger;
  readonly dispatcher: Dispatcher;
  readonly counters: { staleResults: number };
  /** The stream ended: the broker lets the session go. */
  readonly closed: () => void;
}

/** A worker's progress reports reach the store (and watchers) at most this often per session. */
const PROGRESS_MS = 100;
/** Results the store could not commit (a full disk) are tried again, from this often up to the max. */
const RESULT_RETRY_MIN_MS = 50;
const RESULT_RETRY_MAX_MS = 500;

/**
 * One worker's messages applied to its session and the store. Results are
 * committed, then acknowledged (or rejected as stale) so the worker can
 * forget them; progress is coalesced per attempt and written at most every
 * PROGRESS_MS, and an attempt's last report goes out before its result.
 */
export function connectWorker(session: WorkerSession, deps: ConnectionDeps): WorkerConnection {
  const { store, logger, dispatcher, counters } = deps;
  const pendingProgress = new Map<string, ProgressItem>();
  let progressTimer: NodeJS.Timeout | undefined;

  /** An attempt ends: its last progress goes to the store first, in the same commit. */
  const flushProgressOf = (items: readonly AttemptRef[]) => {
    if (pendingProgress.size === 0) return;
    const last: ProgressItem[] = [];
    for (const item of items) {
      const key = `${item.id}#${item.attempt}`;
      const pending = pendingProgress.get(key);
      if (pending === undefined) continue;
      pendingProgress.delete(key);
      last.push(pending);
    }
    if (last.length > 0) void store.progress(last, Date.now()).catch(logFailure);
  };

  /** Tells the worker its results are committed (or rejected as stale), so it can forget them. */
  function acknowledge(items: readonly AttemptRef[], results: readonly { applied: boolean }[]) {
    const refs = items.map(({ id, attempt }) => ({ id, attempt }));
    const stale = refs.filter((_, i) => !results[i]!.applied);
    if (stale.length > 0) {
      counters.staleResults += stale.length;
      logger.warn({ workerId: session.hello.workerId, stale: stale.length }, 'rejected results for attempts that are no longer current');
    }
    if (session.closed) return;
    if (stale.length > 0) session.sink.send({ rejected: stale });
    session.sink.acknowledge(refs);
  }

  function logFailure(error: unknown) {
    // The worker keeps unacknowledged results and sends them again on its next session.
    logger.error({ err: error }, 'failed to commit worker results');
  }

  /**
   * Commits results, then acknowledges them. A store that cannot commit (a
   * full disk) does not cost the work: the results are kept here and tried
   * again until they commit; if the stream ends first, the worker (which
   * keeps them until acknowledged) sends them again on its next session.
   */
  function commitResults(items: readonly AttemptRef[], write: () => Promise<readonly { applied: boolean }[]>, retryMs = RESULT_RETRY_MIN_MS): void {
    write().then(
      (results) => acknowledge(items, results),
      (error: unknown) => {
        if (session.closed) return logFailure(error);
        if (retryMs === RESULT_RETRY_MIN_MS) {
          logger.warn({ workerId: session.hello.workerId, results: items.length, reason: error instanceof Error ? error.message : String(error) },
            'could not commit worker results: kept, trying again');
        }
        setTimeout(() => commitResults(items, write, Math.min(RESULT_RETRY_MAX_MS, retryMs * 2)), retryMs);
      },
    );
  }

  return {
    id: session.id,
    touch() {
      session.lastSeenAt = Date.now();
    },
    credit(n) {
      if (n <= 0) return;
      session.grant(n);
      dispatcher.schedule();
    },
    complete(items) {
      flushProgressOf(items);
      for (const item of items) session.settle(item.id, item.attempt);
      commitResults(items, () => store.complete(items, Date.now()));
    },
    fail(items) {
      flushProgressOf(items);
      for (const item of items) session.settle(item.id, item.attempt);
      const withWorker = items.map((item) => ({ ...item, workerId: session.hello.workerId }));
      commitResults(items, () => store.fail(withWorker, Date.now()));
    },
    progress(items) {
      // Best effort and rate-limited: the latest report per attempt, written at most every PROGRESS_MS.
      for (const item of items) {
        if (session.holds(item.id, item.attempt)) pendingProgress.set(`${item.id}#${item.attempt}`, item);
      }
      if (pendingProgress.size > 0 && progressTimer === undefined) {
        progressTimer = setTimeout(() => {
          progressTimer = undefined;
          const batch = [...pendingProgress.values()];
          pendingProgress.clear();
          void store.progress(batch, Date.now()).catch(logFailure);
        }, PROGRESS_MS);
      }
    },
    release(refs) {
      for (const ref of refs) session.settle(ref.id, ref.attempt);
      commitResults(refs, () => store.release(refs, Date.now()));
    },
    drain() {
      session.draining = true;
    },
    closed: deps.closed,
  };
}
