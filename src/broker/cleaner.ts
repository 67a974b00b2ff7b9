import type { Logger } from 'pino';
import type { Store } from '../store/index.js';

export interface CleanerOptions {
  readonly store: Store;
  readonly logger: Logger;
  /** How long to wait before looking again once nothing is left to delete. Default 1 s. */
  readonly idleMs?: number;
  /** How long one delete may hold the store, in ms: batches are sized to it. Default 1. */
  readonly targetMs?: number;
}

export interface Cleaner {
  /** Tasks this replica's cleaner deleted since it started. */
  readonly deleted: number;
  /** Rounds run (a round deletes until nothing expired is left); for tests. */
  readonly rounds: number;
  /** Resolves once a round started after the call has found nothing more to delete (it starts at once). */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

const MIN_BATCH = 10;
const MAX_BATCH = 5_000;
const FIRST_BATCH = 100;
/** The least rest between two batches of a backlog, in ms. */
const MIN_REST_MS = 2;
/** After each batch the cleaner rests this many times the batch's round trip: at most a quarter of the writer's time. */
const REST_FACTOR = 3;

/**
 * Deletes finished tasks past their retention, in small batches, forever.
 *
 * It must never hold the hot path for more than a few milliseconds, and must
 * keep up at full load. Deleting batch after batch starved submits and
 * results (on SQLite every delete runs in the same writer's commit); a fixed
 * pace fell behind at full load. So the pace follows the store: each batch is
 * sized so that the delete itself takes about `targetMs` (the store reports
 * how long the statement held it), and after each batch the cleaner rests
 * three times as long as the whole round trip took — the time spent queued
 * behind the hot path's writes and their commit included. A busy store makes
 * the round trip long and the cleaner yields more; an idle one lets it run at
 * about a quarter of the writer's time until the backlog is gone.
 *
 * What a batch costs the tasks committed beside it is mostly its pages (the
 * WAL write and fsync of every page it frees), not the statement: with 3 ms
 * batches and a rest of one round trip, tasks at 1,000/s waited a median of
 * 12 ms while a backlog was cleared; with 1 ms and three round trips, 4 ms,
 * and the cleaner still kept up with 12,600 tasks/s (BENCHMARKS.md, table 8).
 */
export function startCleaner(options: CleanerOptions): Cleaner {
  const { store, logger } = options;
  const idleMs = options.idleMs ?? 1_000;
  const targetMs = options.targetMs ?? 1;
  let batch = FIRST_BATCH;
  let deleted = 0;
  let rounds = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  /** Callers of caughtUp: waiting for the next round to start, and for the running one to end. */
  let waiters: Array<() => void> = [];
  let inRound: Array<() => void> = [];

  function rest(ms: number): Promise<void> {
    return new Promise((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });
  }

  /** One round: batches until one comes back short (nothing expired is left). */
  async function round(): Promise<void> {
    const started = performance.now();
    let roundDeleted = 0;
    let batches = 0;
    let longestMs = 0;
    while (!stopped) {
      const sent = performance.now();
      const result = await store.deleteExpired(Date.now(), batch);
      const tookMs = performance.now() - sent;
      batches++;
      longestMs = Math.max(longestMs, result.busyMs);
      roundDeleted += result.deleted;
      deleted += result.deleted;
      if (result.deleted < batch) break;
      // Size the next batch to the target from this one's cost per row, growing at most twofold.
      const perRowMs = Math.max(result.busyMs / result.deleted, 1e-4);
      batch = Math.round(Math.min(MAX_BATCH, batch * 2, Math.max(MIN_BATCH, targetMs / perRowMs)));
      await rest(Math.max(MIN_REST_MS, REST_FACTOR * tookMs));
    }
    rounds++;
    if (roundDeleted > 0) {
      logger.debug(
        { deleted: roundDeleted, batches, batch, longestDeleteMs: +longestMs.toFixed(2), ms: Math.round(performance.now() - started) },
        'cleaner deleted expired tasks',
      );
    }
  }

  const loop = (async () => {
    while (!stopped) {
      inRound = waiters;
      waiters = [];
      try {
        await round();
        if (failing) logger.info('the cleaner deletes expired tasks again');
        failing = false;
      } catch (error) {
        if (!stopped && !failing) logger.warn({ err: error }, 'the cleaner could not delete expired tasks; trying again');
        failing = true;
      }
      for (const resolve of inRound) resolve();
      inRound = [];
      if (!stopped) await rest(idleMs);
    }
  })();

  return {
    get deleted() {
      return deleted;
    },
    get rounds() {
      return rounds;
    },
    caughtUp() {
      return new Promise((resolve) => {
        waiters.push(resolve);
        // Start the next round now rather than after the idle wait.
        if (inRound.length === 0) {
          clearTimeout(timer);
          wake?.();
        }
      });
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await loop;
      for (const resolve of [...inRound, ...waiters]) resolve();
    },
  };
}
