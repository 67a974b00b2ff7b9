import type pg from 'pg';
import { diskFull, TaskwireError } from '../../errors.js';
import type { TaskEvent } from '../types.js';

interface PendingWrite {
  run(client: pg.PoolClient, events: TaskEvent[]): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions {
  readonly pool: pg.Pool;
  /** Runs inside each transaction just before COMMIT, with its events (the NOTIFY to other replicas). */
  readonly beforeCommit: (client: pg.PoolClient, events: readonly TaskEvent[]) => Promise<void>;
  /** Called with each commit's events, after the commit, before the writes' promises settle. */
  readonly publish: (events: readonly TaskEvent[]) => void;
  /** Writes started failing (with why), or succeed again (undefined); called on each change. */
  readonly health: (failure: Error | undefined) => void;
  /** Each commit that ran: how long it took (seconds) and how many writes it carried. */
  readonly committed?: (seconds: number, writes: number) => void;
}

/** SQLSTATE 53100 disk_full, 53400 configuration_limit_exceeded is not a full disk. */
const DISK_FULL = '53100';

/** A full disk in words an operator acts on; other errors as they are. */
function storageError(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code === DISK_FULL ? diskFull('the PostgreSQL database (its server reported 53100 disk_full)') : error;
}

export interface GroupCommit {
  /** Runs `run` inside the next transaction; resolves with its result once that transaction commits. */
  write<T>(run: (client: pg.PoolClient, events: TaskEvent[]) => Promise<T>): Promise<T>;
  /** Commits what is pending and refuses writes from now on; false if it was already closed. */
  close(): Promise<boolean>;
}

/**
 * Group commit on one connection at a time: the writes issued while a
 * transaction commits gather into the next. One failing write does not undo
 * the others: a database error aborts the whole transaction, so the batch is
 * run again with each write in a transaction of its own.
 */
export function createGroupCommit(options: GroupCommitOptions): GroupCommit {
  let pending: PendingWrite[] = [];
  let flushing = false;
  let closed = false;
  /** Why writes are failing, while they are. */
  let failing: Error | undefined;

  function report(failure: Error | undefined): void {
    if (failure === failing || (failure !== undefined && failing !== undefined && failure.message === failing.message)) return;
    failing = failure;
    options.health(failure);
  }

  function write<T>(run: (client: pg.PoolClient, events: TaskEvent[]) => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      pending.push({ run, resolve: resolve as (value: unknown) => void, reject });
      if (!flushing) setImmediate(flush);
    });
  }

  /** One transaction per batch; the next batch gathers while this one commits. */
  async function flush(): Promise<void> {
    if (flushing || pending.length === 0) return;
    flushing = true;
    const batch = pending;
    pending = [];
    let client: pg.PoolClient;
    try {
      client = await options.pool.connect();
    } catch (error) {
      // The database cannot be reached: these writes fail, later ones try again.
      report(error instanceof Error ? error : new Error(String(error)));
      for (const op of batch) op.reject(error);
      flushing = false;
      if (pending.length > 0) setImmediate(flush);
      return;
    }
    try {
      let full: Error | undefined;
      const started = performance.now();
      const committed = await commit(client, batch).catch(async (error: unknown) => {
        // A database error aborts the whole transaction: run each write in its own instead.
        if (error instanceof TaskwireError) throw error;
        const events: TaskEvent[] = [];
        const outcomes: Array<{ ok: boolean; value: unknown }> = [];
        for (const op of batch) {
          const single = await commit(client, [op]).catch((e: unknown) => {
            const value = storageError(e);
            if (value !== e) full = value as Error;
            return { events: [], outcomes: [{ ok: false, value }] };
          });
          events.push(...single.events);
          outcomes.push(single.outcomes[0]!);
        }
        return { events, outcomes };
      });
      // A write that failed for want of space says the store is not writable, even if others committed;
      // while failing, only a commit that changed tasks (one without changes writes nothing) shows room again.
      options.committed?.((performance.now() - started) / 1000, batch.length);
      if (full !== undefined || failing === undefined || committed.events.length > 0) report(full);
      committed.outcomes.forEach((o, i) => (o.ok ? batch[i]!.resolve(o.value) : batch[i]!.reject(o.value)));
      if (committed.events.length > 0) options.publish(committed.events);
    } catch (error) {
      const failure = storageError(error);
      report(failure instanceof Error ? failure : new Error(String(failure)));
      for (const op of batch) op.reject(failure);
    } finally {
      client.release();
      flushing = false;
      if (pending.length > 0) setImmediate(flush);
    }
  }

  async function commit(client: pg.PoolClient, batch: readonly PendingWrite[]) {
    const events: TaskEvent[] = [];
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    await client.query('BEGIN');
    try {
      for (const op of batch) {
        const mark = events.length;
        try {
          outcomes.push({ ok: true, value: await op.run(client, events) });
        } catch (error) {
          // A refusal (TaskwireError) comes before any write; anything else aborted the transaction.
          if (!(error instanceof TaskwireError)) throw error;
          events.length = mark;
          outcomes.push({ ok: false, value: error });
        }
      }
      await options.beforeCommit(client, events);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    return { events, outcomes };
  }

  return {
    write,
    async close() {
      if (closed) return false;
      closed = true;
      while (flushing || pending.length > 0) {
        if (!flushing) void flush();
        await new Promise((resolve) => setImmediate(resolve));
      }
      return true;
    },
  };
}
