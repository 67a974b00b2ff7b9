import type { Logger } from 'pino';
import { attemptKey } from '../contract.js';
import { Code } from '../errors.js';
import type { AttemptRef, CompleteItem, FailItem, Payload, ProgressItem, Store } from '../store/index.js';
import type { Dispatcher } from './dispatcher.js';
import type { HeldLease, WorkerSession } from './session.js';
import type { Rejection, TaskTypeInfo } from './types.js';

/** A worker's Complete as it came: the output may be missing or of the wrong type. */
export interface CompleteReport extends AttemptRef {
  readonly output: Payload | undefined;
}

/** A worker's report of an attempt, and the lease this session held for it. */
interface Held<T> {
  readonly item: T;
  readonly lease: HeldLease;
}

/** What the transport calls for one worker's messages. */
export interface WorkerConnection {
  readonly id: string;
  touch(): void;
  credit(n: number): void;
  complete(items: readonly CompleteReport[]): void;
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
  /** The task types the server serves: a result's output must be of its type's output message. */
  readonly types: ReadonlyMap<string, TaskTypeInfo>;
  readonly counters: { staleResults: number; refusedResults: number };
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
  const { store, logger, dispatcher, counters, types } = deps;
  const workerId = session.hello.workerId;
  const pendingProgress = new Map<string, ProgressItem>();
  let progressTimer: NodeJS.Timeout | undefined;

  /** An attempt ends: its last progress goes to the store first, in the same commit. */
  const flushProgressOf = (items: readonly AttemptRef[]) => {
    if (pendingProgress.size === 0) return;
    const last: ProgressItem[] = [];
    for (const item of items) {
      const key = attemptKey(item.id, item.attempt);
      const pending = pendingProgress.get(key);
      if (pending === undefined) continue;
      pendingProgress.delete(key);
      last.push(pending);
    }
    if (last.length > 0) void store.progress(last, Date.now()).catch(logFailure);
  };

  /** Tells the worker its results are committed (or rejected as stale), so it can forget them. */
  function acknowledge(items: readonly AttemptRef[], results: readonly { applied: boolean }[]) {
    for (const item of items) session.ended(item.id, item.attempt);
    const refs = items.map(({ id, attempt }) => ({ id, attempt }));
    const stale = refs
      .filter((_, i) => !results[i]!.applied)
      .map((ref) => ({ ...ref, reason: `attempt ${ref.attempt} of task ${ref.id} is no longer current` }));
    if (stale.length > 0) {
      counters.staleResults += stale.length;
      logger.warn({ workerId, stale: stale.length }, 'rejected results for attempts that are no longer current');
    }
    if (session.closed) return;
    if (stale.length > 0) session.sink.send({ rejected: stale });
    session.sink.acknowledge(refs);
  }

  /** Refuses results, counted, and tells the worker (which may then forget them). */
  function refuse(refused: readonly Rejection[], what: string, why: string) {
    counters.refusedResults += refused.length;
    logger.warn({ workerId, refused: refused.length, what }, why);
    if (!session.closed) {
      session.sink.send({ rejected: refused });
      session.sink.acknowledge(refused.map(({ id, attempt }) => ({ id, attempt })));
    }
  }

  /**
   * Keeps the items whose lease this session holds; refuses the rest at once.
   * Only the holder answers for an attempt: another session that learnt a
   * task id and attempt (GetTask tells anyone) cannot end it.
   */
  function held<T extends AttemptRef>(items: readonly T[], what: string): Array<Held<T>> {
    const kept: Array<Held<T>> = [];
    let refused: Rejection[] | undefined;
    for (const item of items) {
      const lease = session.endLease(item.id, item.attempt);
      if (lease !== undefined) {
        // Until its write commits, the store still leases the attempt to this session (Session.owns).
        session.ending(item.id, item.attempt);
        kept.push({ item, lease });
      }
      else {
        (refused ??= []).push({
          id: item.id,
          attempt: item.attempt,
          reason: `${what} refused: this session does not hold the lease on attempt ${item.attempt} of task ${item.id} (it ended, or was never leased to this worker)`,
        });
      }
    }
    if (refused !== undefined) refuse(refused, what, 'refused results for leases this session does not hold');
    return kept;
  }

  /** What is wrong with a result's output for its task type; undefined when it is the type's output message. */
  function outputProblem(lease: HeldLease, output: Payload | undefined): string | undefined {
    const info = types.get(lease.type);
    const expected = info?.outputTypeUrl;
    if (output === undefined) {
      return `the worker completed ${lease.type} without an output; it must send a ${expected ?? 'message'} packed as Any`;
    }
    if (expected !== undefined && output.typeUrl !== expected) {
      return `the worker's output has type "${output.typeUrl}" but ${lease.type} returns "${expected}"`;
    }
    const problem = info?.checkOutput?.(output.value);
    return problem === undefined ? undefined : `the worker's output is not a valid ${expected ?? 'message'}: ${problem}`;
  }

  function commitFails(kept: ReadonlyArray<Held<FailItem>>) {
    if (kept.length > 0) commitResults(kept, 'fail', (items) => store.fail(items, Date.now()));
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
   *
   * An attempt sent before its task's insert committed (HeldLease.early) is
   * written at once as well: the store applies writes in the order they are
   * called, so its result runs after the insert, in the same commit or a
   * later one, and finds nothing if the insert failed. It is acknowledged
   * only once the insert's outcome is known, and refused if the task was
   * never stored, so a result of a task that does not exist is never
   * acknowledged.
   */
  function commitResults<T extends AttemptRef>(
    kept: ReadonlyArray<Held<T>>,
    what: string,
    write: (items: T[]) => Promise<readonly { applied: boolean }[]>,
    retryMs = RESULT_RETRY_MIN_MS,
  ): void {
    const items = kept.map(({ item }) => item);
    const written = write(items);
    let stored: Promise<boolean[]> | undefined;
    for (const { lease } of kept) {
      if (lease.early === undefined) continue;
      lease.early.ending(true);
      stored ??= Promise.all(kept.map(({ lease }) => lease.early?.stored ?? true));
    }
    /** Refuses the attempts whose task was never stored; the rest go on. */
    const ofStoredTasks = (then: (kept: ReadonlyArray<Held<T>>, stored: boolean[] | undefined) => void) => {
      if (stored === undefined) return then(kept, undefined);
      void stored.then((flags) => {
        const refused = kept
          .filter((_, i) => !flags[i])
          .map(({ item }) => ({
            id: item.id,
            attempt: item.attempt,
            reason: `${what} refused: task ${item.id} was never stored (its submit failed), so attempt ${item.attempt} has nothing to record`,
          }));
        for (const item of refused) session.ended(item.id, item.attempt);
        if (refused.length > 0) refuse(refused, what, 'refused results of tasks that were never stored');
        then(kept.filter((_, i) => flags[i]), flags);
      });
    };
    written.then(
      (results) =>
        ofStoredTasks((storedKept, flags) => {
          if (storedKept.length === 0) return;
          acknowledge(storedKept.map(({ item }) => item), flags === undefined ? results : results.filter((_, i) => flags[i]));
        }),
      (error: unknown) =>
        ofStoredTasks((storedKept) => {
          if (storedKept.length === 0) return;
          if (session.closed) {
            for (const { item } of storedKept) session.ended(item.id, item.attempt);
            return logFailure(error);
          }
          if (retryMs === RESULT_RETRY_MIN_MS) {
            logger.warn({ workerId, results: storedKept.length, reason: error instanceof Error ? error.message : String(error) },
              'could not commit worker results: kept, trying again');
          }
          // Stored by now: what is tried again waits for nothing.
          const again = storedKept.map(({ item, lease }) => ({ item, lease: { id: lease.id, attempt: lease.attempt, type: lease.type } }));
          setTimeout(() => commitResults(again, what, write, Math.min(RESULT_RETRY_MAX_MS, retryMs * 2)), retryMs);
        }),
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
      const completes: Array<Held<CompleteItem>> = [];
      const malformed: Array<Held<FailItem>> = [];
      for (const { item, lease } of held(items, 'complete')) {
        const problem = outputProblem(lease, item.output);
        // A malformed output fails its attempt alone, for good: running it again would give the same.
        if (problem === undefined) completes.push({ item: { id: item.id, attempt: item.attempt, output: item.output! }, lease });
        else malformed.push({ item: { id: item.id, attempt: item.attempt, message: problem, code: Code.INTERNAL, retryable: false, workerId }, lease });
      }
      if (completes.length > 0) commitResults(completes, 'complete', (items) => store.complete(items, Date.now()));
      commitFails(malformed);
    },
    fail(items) {
      flushProgressOf(items);
      commitFails(held(items, 'fail').map(({ item, lease }) => ({ item: { ...item, workerId }, lease })));
    },
    progress(items) {
      // Best effort and rate-limited: the latest report per attempt, written at most every PROGRESS_MS.
      for (const item of items) {
        if (session.holds(item.id, item.attempt)) pendingProgress.set(attemptKey(item.id, item.attempt), item);
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
      const kept = held(refs, 'release').map(({ item, lease }) => ({ item: { id: item.id, attempt: item.attempt }, lease }));
      if (kept.length > 0) commitResults(kept, 'release', (items) => store.release(items, Date.now()));
    },
    drain() {
      session.drain();
    },
    closed: deps.closed,
  };
}
