import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import type { WorkerSession } from './session.js';

export interface DispatcherOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly leaseMs: number;
  /** Most assignments claimed for one session at once. */
  readonly maxBatch: number;
}

/**
 * Hands queued tasks to sessions with credit. A pass runs on the next turn
 * of the event loop after anything that may make work possible (a task
 * queued, credit returned), so many triggers coalesce into one pass and one
 * claim per session. Sessions are visited round-robin; each claims at most
 * its credit, so no worker holds more than its free slots.
 *
 * `ready` remembers per task type whether the last claim found the queue
 * empty, so idle workers do not poll the store; a generation counter keeps a
 * task queued during a claim from being forgotten.
 */
export class Dispatcher {
  readonly #sessions: WorkerSession[] = [];
  readonly #empty = new Map<string, number>();
  readonly #generation = new Map<string, number>();
  #start = 0;
  #scheduled = false;
  #paused = false;

  constructor(private readonly options: DispatcherOptions) {}

  add(session: WorkerSession): void {
    this.#sessions.push(session);
    this.schedule();
  }

  remove(session: WorkerSession): void {
    const index = this.#sessions.indexOf(session);
    if (index >= 0) this.#sessions.splice(index, 1);
  }

  /** Work of this type may be waiting. */
  markReady(type: string): void {
    this.#generation.set(type, (this.#generation.get(type) ?? 0) + 1);
    this.#empty.delete(type);
    this.schedule();
  }

  /** Stop handing out work (shutdown). */
  pause(): void {
    this.#paused = true;
  }

  schedule(): void {
    if (this.#scheduled || this.#paused) return;
    this.#scheduled = true;
    setImmediate(() => this.#pass());
  }

  #pass(): void {
    this.#scheduled = false;
    const count = this.#sessions.length;
    if (count === 0 || this.#paused) return;
    this.#start = (this.#start + 1) % count;
    for (let i = 0; i < count; i++) {
      const session = this.#sessions[(this.#start + i) % count]!;
      if (session.credit <= 0 || session.claiming || session.closed || session.draining) continue;
      const types = session.hello.taskTypes.filter((type) => !this.#empty.has(type));
      if (types.length > 0) void this.#claim(session, types);
    }
  }

  async #claim(session: WorkerSession, types: string[]): Promise<void> {
    const limit = Math.min(session.credit, this.options.maxBatch);
    const generations = types.map((type) => this.#generation.get(type) ?? 0);
    session.claiming = true;
    session.credit -= limit;
    try {
      const leases = await this.options.store.claim({
        types,
        limit,
        owner: session.id,
        workerId: session.hello.workerId,
        leaseMs: this.options.leaseMs,
        now: Date.now(),
      });
      session.credit += limit - leases.length;
      if (leases.length < limit) {
        types.forEach((type, i) => {
          if ((this.#generation.get(type) ?? 0) === generations[i]) this.#empty.set(type, generations[i]!);
        });
      }
      if (session.closed) {
        // The worker left while the claim ran: hand the tasks straight back.
        await this.options.store.release(leases, Date.now());
      } else if (leases.length > 0) {
        session.assign(leases);
      }
    } catch (error) {
      // Retried on the sweeper's next tick rather than at once, so a failing store is not hammered.
      session.credit += limit;
      session.claiming = false;
      this.options.logger.error({ err: error }, 'claim failed');
      return;
    }
    session.claiming = false;
    if (session.credit > 0) this.schedule();
  }
}
