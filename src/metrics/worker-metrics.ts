import { Counter, Gauge, type Registry } from 'prom-client';
import { fastCounter, fastHistogram, type FastCounter, type FastHistogram } from './fast.js';
import { WIDE_SECONDS } from './registry.js';

/** How an attempt ended on the worker. */
export type AttemptOutcome = 'succeeded' | 'failed' | 'cancelled' | 'released';

export interface WorkerMetrics {
  /** An attempt's handler returned or threw. */
  attemptEnded(type: string, outcome: AttemptOutcome, seconds: number): void;
  /** A session after the first was welcomed. */
  reconnected(): void;
}

/** A worker's metrics: what it ran and how it went, its slots and its reconnects. */
export function registerWorkerMetrics(registry: Registry, slots: () => { total: number; busy: number }): WorkerMetrics {
  const registers = [registry];
  const attempts = fastCounter(registry, {
    name: 'taskwire_worker_tasks_total',
    help: 'Attempts this worker ran, by task type and outcome (succeeded, failed, cancelled, released).',
    labelNames: ['type', 'outcome'],
  });
  const handlerSeconds = fastHistogram(registry, {
    name: 'taskwire_worker_handler_seconds',
    help: 'Handler duration per attempt, by task type and outcome.',
    labelNames: ['type', 'outcome'],
    buckets: WIDE_SECONDS,
  });
  const reconnects = new Counter({ name: 'taskwire_worker_reconnects_total', help: 'Sessions opened again after the first.', registers });
  new Gauge({
    name: 'taskwire_worker_slots',
    help: 'This worker’s slots: use="total" (its concurrency), and use="busy" (running an attempt).',
    labelNames: ['use'],
    registers,
    collect() {
      const now = slots();
      this.set({ use: 'total' }, now.total);
      this.set({ use: 'busy' }, now.busy);
    },
  });
  /** Series per (type, outcome), made once. */
  const series = new Map<string, { count: FastCounter; seconds: FastHistogram }>();
  return {
    attemptEnded(type, outcome, seconds) {
      const key = `${type}\n${outcome}`;
      let s = series.get(key);
      if (s === undefined) series.set(key, (s = { count: attempts({ type, outcome }), seconds: handlerSeconds({ type, outcome }) }));
      s.count.inc();
      s.seconds.observe(seconds);
    },
    reconnected() {
      reconnects.inc();
    },
  };
}
