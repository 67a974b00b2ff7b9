import type { Logger } from 'pino';
import { Code, unavailable } from '../errors.js';
import type { AttemptRef, Store } from '../store/index.js';
import type { Dispatcher } from './dispatcher.js';
import type { WorkerSession } from './session.js';

/**
 * How long a worker takes at most to reconnect after an outage of any length
 * (its reconnect backoff's cap, rpc/options.ts). A server that starts gives
 * the workers of its previous life one lease period plus this to resume.
 */
export const WORKER_RECONNECT_MAX_MS = 5_000;

export interface SweeperOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly dispatcher: Dispatcher;
  readonly sessions: ReadonlyMap<string, WorkerSession>;
  /** Where lease expiries and timeouts are counted. */
  readonly counters: { leasesExpired: number; timedOut: number };
  readonly leaseMs: number;
  readonly sweepMs: number;
  /** A session that stopped heartbeating is closed and dropped. */
  dropSession(session: WorkerSession, why: string): Promise<void>;
}

/**
 * The broker's timers, as one periodic sweep: due tasks promoted, queue
 * timeouts expired, silent sessions closed, live leases renewed, attempts past
 * their deadline failed, and the dispatcher nudged. All writes are fenced, so
 * several servers may sweep one store. Returns a function that stops it.
 *
 * A lease expires only when no server renews it: a server renews the leases of
 * its live sessions and itself fails the attempts of a worker that falls
 * silent. So an expired lease means its server went away (crashed, restarted,
 * cut off from the store) — not the task's fault: the attempt is handed back
 * to the queue (release), not counted as a failure. And a server that starts
 * gives the workers of its previous life one lease period (plus their
 * reconnect cap) to come back and resume: leases that would end sooner are
 * extended in the store (which other replicas see too), and until then this
 * sweeper expires none it does not own.
 */
export function startSweeper(options: SweeperOptions): () => void {
  const { store, logger, dispatcher, sessions, counters, leaseMs, sweepMs } = options;
  let sweeping = false;
  let sweeps = 0;
  let stopped = false;
  const graceMs = leaseMs + WORKER_RECONNECT_MAX_MS;
  const graceUntil = Date.now() + graceMs;
  store.extendLeases(graceUntil).then(
    (extended) => {
      if (extended > 0) logger.info({ leases: extended, graceMs }, 'leases from before the start extended: their workers have this long to resume them');
    },
    (error: unknown) => logger.warn({ err: error, graceMs }, 'could not extend the leases held before the start; expiring none of them for the grace period'),
  );

  async function sweep(stalled: boolean): Promise<void> {
    const now = Date.now();
    await store.promoteDue(now);
    await store.expireQueued(now);
    for (const session of sessions.values()) {
      // After a stall of this server's own loop, timers run before the socket reads that waited:
      // a worker's messages may be sitting unread. Judge silence on a sweep that ran on time.
      if (now - session.lastSeenAt > leaseMs && !stalled) {
        session.sink.close(unavailable(`no message from worker ${session.hello.workerId} for ${leaseMs} ms; reconnect`));
        await options.dropSession(session, 'the worker stopped sending heartbeats');
      } else if (now - session.lastRenewedAt > leaseMs / 3) {
        const owned = session.owned();
        if (owned.length === 0) continue;
        session.lastRenewedAt = now;
        await store.renewLeases(session.id, owned, now + leaseMs);
      }
    }
    await endOverdue(now);
    // Every ~5 s the dispatcher looks in the store again, in case an event was missed.
    if (++sweeps % Math.max(1, Math.round(5_000 / sweepMs)) === 0) dispatcher.recheck();
    else dispatcher.schedule();
  }

  async function endOverdue(now: number): Promise<void> {
    const overdue = await store.overdue(now, 500);
    const timedOut: AttemptRef[] = [];
    const orphaned: AttemptRef[] = [];
    const renew = new Map<WorkerSession, AttemptRef[]>();
    for (const item of overdue) {
      const ref = { id: item.id, attempt: item.attempt };
      const holder = item.owner === undefined ? undefined : sessions.get(item.owner);
      if (item.reason === 'deadline') timedOut.push(ref);
      // Our own live session holding this attempt (or writing its result): its renewal was late (a
      // stalled loop, a failed write), the worker is fine. One that does not own it (a claim or
      // insert this server saw fail had committed) will never end it: it expires like any other.
      else if (holder !== undefined && !holder.closed && holder.owns(ref.id, ref.attempt)) renew.set(holder, [...(renew.get(holder) ?? []), ref]);
      else if (now >= graceUntil) orphaned.push(ref);
    }
    for (const [session, refs] of renew) await store.renewLeases(session.id, refs, now + leaseMs);
    if (timedOut.length > 0) {
      const failed = await store.fail(
        timedOut.map((ref) => ({
          ...ref,
          message: 'execution timeout: the attempt ran past its deadline',
          code: Code.DEADLINE_EXCEEDED,
          retryable: true,
        })),
        now,
      );
      counters.timedOut += failed.filter((r) => r.applied).length;
    }
    if (orphaned.length > 0) {
      const released = (await store.release(orphaned, now)).filter((r) => r.applied).length;
      counters.leasesExpired += released;
      if (released > 0) {
        logger.warn({ released }, 'leases expired with no server renewing them: attempts handed back to the queue, not counted as failures');
      }
    }
  }

  /** The sweep is failing (a full disk): said once, not every 200 ms. */
  let failing = false;
  let lastTick = Date.now();
  const timer = setInterval(() => {
    const tick = Date.now();
    const stalled = tick - lastTick > 2 * sweepMs + 100;
    lastTick = tick;
    if (sweeping || stopped) return;
    sweeping = true;
    sweep(stalled)
      .then(
        () => {
          if (failing) logger.info('sweeps succeed again');
          failing = false;
        },
        (error: unknown) => {
          if (!failing) logger.error({ err: error }, 'sweep failed; retrying every sweep, quiet until one succeeds');
          failing = true;
        },
      )
      .finally(() => (sweeping = false));
  }, sweepMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
