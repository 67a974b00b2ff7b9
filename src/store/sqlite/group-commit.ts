import type { Database } from 'better-sqlite3';
import { diskFull, TaskwireError } from '../../errors.js';
import type { TaskEvent } from '../types.js';

/** Task changes in one commit that mean the store is busy (see commitIntervalMs). */
const BUSY_COMMIT = 32;

/** Thrown inside a batch to roll it back and run it again with savepoints. */
class RetryWithSavepoints extends Error {}

interface PendingWrite {
  run(events: TaskEvent[]): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions {
  /** Least time between two commits once busy; see SqliteStoreOptions.commitIntervalMs. */
  readonly commitIntervalMs: number;
  /** Longest a quiet store's commit waits for a write it was told to expect (`hold`); see SqliteStoreOptions.lingerMs. */
  readonly lingerMs?: number;
  /** Called with each commit's events, after the commit, before the writes' promises settle. */
  readonly publish: (events: readonly TaskEvent[]) => void;
  /** The database file, named in errors. */
  readonly path: string;
  /** Writes started failing (with why), or succeed again (undefined); called on each change. */
  readonly health: (failure: Error | undefined) => void;
  /** Each commit that ran: how long it took (seconds) and how many writes it carried. */
  readonly committed?: (seconds: number, writes: number) => void;
}

export interface GroupCommit {
  /** Runs `run` inside the next commit; resolves with its result once that commit is done. */
  write<T>(run: (events: TaskEvent[]) => T): Promise<T>;
  /** See Store.hold. */
  hold(expectMs: number): (() => void) | undefined;
  /** Commits what is pending and refuses writes from now on; false if it was already closed. */
  close(): boolean;
}

/**
 * Runs `fn` once the stream messages queued in this turn are in their
 * sockets. An outbox (rpc/outbox.ts) writes its turn's messages from a
 * setImmediate, and Node's HTTP/2 hands written data to the socket in a
 * native immediate, which runs at the start of the next check phase, before
 * the JavaScript immediates queued in the one before. A commit blocks the
 * thread for its fsync: run after those writes, it no longer holds back what
 * was decided before it (a task sent to its worker ahead of its insert, the
 * acks and outcomes of the last commit), which then travels while the disk
 * syncs. The cost is one more pass of the event loop before a quiet store's
 * commit.
 */
function afterSocketWrites(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}

/**
 * better-sqlite3 is synchronous, so concurrency comes from group commit:
 * every write issued in one turn of the event loop runs in one transaction,
 * and all their promises resolve after that one commit. One failing write
 * does not undo the others. Under load the batch grows on purpose: after a
 * busy commit the next waits until `commitIntervalMs` after it. A quiet
 * store commits once this turn's messages are sent (`afterSocketWrites`).
 */
export function createGroupCommit(db: Database, options: GroupCommitOptions): GroupCommit {
  let pending: PendingWrite[] = [];
  let flushScheduled = false;
  let closed = false;
  /** When the last busy commit was made; -Infinity while the store is quiet. */
  let lastBusyCommit = -Infinity;
  /** Why writes are failing, while they are. */
  let failing: Error | undefined;
  const lingerMs = options.lingerMs ?? 0;
  /** Holds taken on the pending commit and not yet released (`hold`); a commit forgets them. */
  let holds = 0;
  /** The pending commit came due and waits for its holds: a hold taken now would only prolong it. */
  let due = false;
  /** Counts commits, so a hold released after its commit ran changes nothing. */
  let generation = 0;
  /** When the first of the pending writes came. */
  let firstPendingAt = 0;
  /** The pending commit waits for its holds, on this timer. */
  let lingering: NodeJS.Timeout | undefined;

  /** A full disk in words an operator acts on; other errors as they are. */
  function storageError(error: unknown): unknown {
    return (error as { code?: unknown } | null)?.code === 'SQLITE_FULL' ? diskFull(`the SQLite database ${options.path}`) : error;
  }

  function report(failure: Error | undefined): void {
    if (failure === failing) return;
    if (failure !== undefined && failing !== undefined && failure.message === failing.message) return;
    failing = failure;
    options.health(failure);
  }

  function rejectAll(batch: readonly PendingWrite[], error: unknown): void {
    const failure = storageError(error);
    report(failure instanceof Error ? failure : new Error(String(failure)));
    for (const op of batch) op.reject(failure);
  }

  function write<T>(run: (events: TaskEvent[]) => T): Promise<T> {
    if (closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      if (pending.length === 0) firstPendingAt = performance.now();
      pending.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        const wait = lastBusyCommit + options.commitIntervalMs - performance.now();
        if (wait <= 0) afterSocketWrites(flush);
        else setTimeout(flush, wait);
      }
    });
  }

  /**
   * A quiet store's commit waits while a write it was told to expect has not
   * come (`hold`), at most `lingerMs` after the first of its writes: the result
   * of a task sent ahead of its insert then shares the insert's commit, one
   * fsync for both. Only holds taken before the commit came due count: at a
   * steady rate each new task would otherwise prolong the wait of the ones
   * before it, and every commit would wait its whole linger. A late task's
   * result goes in the next commit, which the results of its neighbours make
   * anyway. A busy store commits on its interval, holds or not.
   */
  function hold(expectMs: number): (() => void) | undefined {
    if (closed || due || pending.length === 0 || expectMs > lingerMs || performance.now() < lastBusyCommit + options.commitIntervalMs) return undefined;
    holds++;
    const of = generation;
    let released = false;
    return () => {
      if (released || of !== generation) return;
      released = true;
      if (--holds === 0 && lingering !== undefined) {
        clearTimeout(lingering);
        lingering = undefined;
        afterSocketWrites(flush);
      }
    };
  }

  function flush(): void {
    lingering = undefined;
    if (holds > 0 && !closed) {
      const wait = firstPendingAt + lingerMs - performance.now();
      if (wait > 0) {
        due = true;
        lingering = setTimeout(flush, wait);
        return;
      }
    }
    flushScheduled = false;
    holds = 0;
    due = false;
    generation++;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    // One transaction for the whole batch. An operation that refuses (a
    // TaskwireError) does so before it writes, so it needs no savepoint; any
    // other error may come after a partial write, so the batch is rolled back
    // and run again with a savepoint around each operation.
    let committed: { events: TaskEvent[]; outcomes: Array<{ ok: boolean; value: unknown }> };
    // While writes fail, only a commit that changed rows shows the disk has room again (one that
    // changed nothing commits without writing a page).
    const changesBefore = failing === undefined ? 0 : totalChanges();
    const started = performance.now();
    try {
      committed = commit(batch, false);
    } catch (error) {
      if (!(error instanceof RetryWithSavepoints)) return rejectAll(batch, error);
      try {
        committed = commit(batch, true);
      } catch (retryError) {
        return rejectAll(batch, retryError);
      }
    }
    const ended = performance.now();
    options.committed?.((ended - started) / 1000, batch.length);
    lastBusyCommit = committed.events.length >= BUSY_COMMIT ? ended : -Infinity;
    const { events, outcomes } = committed;
    let full: Error | undefined;
    for (const outcome of outcomes) {
      if (outcome.ok || outcome.value instanceof TaskwireError) continue;
      outcome.value = storageError(outcome.value);
      if (outcome.value instanceof TaskwireError) full = outcome.value;
    }
    // A write that failed for want of space says the store is not writable, even if others committed.
    if (full !== undefined || failing === undefined || totalChanges() > changesBefore) report(full);
    outcomes.forEach((outcome, i) => (outcome.ok ? batch[i]!.resolve(outcome.value) : batch[i]!.reject(outcome.value)));
    if (events.length > 0) options.publish(events);
  }

  const changes = db.prepare('SELECT total_changes() AS n').pluck();
  const totalChanges = () => changes.get() as number;
  const inSavepoint = db.transaction((op: PendingWrite, events: TaskEvent[]) => op.run(events));
  const commit = db.transaction((batch: readonly PendingWrite[], savepoints: boolean) => {
    const events: TaskEvent[] = [];
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    for (const op of batch) {
      const mark = events.length;
      try {
        outcomes.push({ ok: true, value: savepoints ? inSavepoint(op, events) : op.run(events) });
      } catch (error) {
        if (!savepoints && !(error instanceof TaskwireError)) throw new RetryWithSavepoints();
        // Some errors (SQLITE_FULL among them) make SQLite roll the whole transaction back: none of the batch stands.
        if (!db.inTransaction) throw error;
        events.length = mark;
        outcomes.push({ ok: false, value: error });
      }
    }
    return { events, outcomes };
  });

  return {
    write,
    hold,
    close() {
      if (closed) return false;
      clearTimeout(lingering);
      closed = true;
      if (pending.length > 0) flush();
      return true;
    },
  };
}
