import type { Logger } from 'pino';
import { Code, unavailable } from '../errors.js';
import type { Store } from '../store/index.js';
import type { Dispatcher } from './dispatcher.js';
import type { WorkerSession } from './session.js';

export interface SweeperOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly dispatcher: Dispatcher;
  readonly sessions: ReadonlyMap<string, WorkerSession>;
  readonly leaseMs: number;
  readonly sweepMs: number;
  /** A session that stopped heartbeating is closed and dropped. */
  dropSession(session: WorkerSession, why: string): Promise<void>;
}

/**
 * The broker's timers, as one periodic sweep: due tasks promoted, queue
 * timeouts expired, silent sessions closed, live leases renewed, attempts past
 * their lease or deadline failed (fenced, so several servers may sweep one
 * store), and the dispatcher nudged. Returns a function that stops it.
 */
export function startSweeper(options: SweeperOptions): () => void {
  const { store, logger, dispatcher, sessions, leaseMs, sweepMs } = options;
  let sweeping = false;
  let sweeps = 0;
  let stopped = false;

  async function sweep(): Promise<void> {
    const now = Date.now();
    await store.promoteDue(now);
    await store.expireQueued(now);
    for (const session of sessions.values()) {
      if (now - session.lastSeenAt > leaseMs) {
        session.sink.close(unavailable(`no message from worker ${session.hello.workerId} for ${leaseMs} ms; reconnect`));
        await options.dropSession(session, 'the worker stopped sending heartbeats');
      } else if (session.running > 0 && now - session.lastRenewedAt > leaseMs / 3) {
        session.lastRenewedAt = now;
        await store.renewLeases(session.id, session.leases(), now + leaseMs);
      }
    }
    const overdue = await store.overdue(now, 500);
    if (overdue.length > 0) {
      await store.fail(
        overdue.map((item) => ({
          id: item.id,
          attempt: item.attempt,
          message:
            item.reason === 'deadline'
              ? 'execution timeout: the attempt ran past its deadline'
              : 'lease expired: no heartbeat from the worker that held it',
          code: item.reason === 'deadline' ? Code.DEADLINE_EXCEEDED : Code.UNAVAILABLE,
          retryable: true,
        })),
        now,
      );
    }
    // Every ~5 s the dispatcher looks in the store again, in case an event was missed.
    if (++sweeps % Math.max(1, Math.round(5_000 / sweepMs)) === 0) dispatcher.recheck();
    else dispatcher.schedule();
  }

  const timer = setInterval(() => {
    if (sweeping || stopped) return;
    sweeping = true;
    sweep()
      .catch((error: unknown) => logger.error({ err: error }, 'sweep failed'))
      .finally(() => (sweeping = false));
  }, sweepMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
