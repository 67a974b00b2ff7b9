import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * How often Node's event-loop delay is sampled, in ms. prom-client's default
 * (10 ms) wakes an idle process 100 times a second; at 1,000 tasks/s that was
 * most of what metrics cost each process (BENCHMARKS.md, "The cost of
 * metrics"). A blocked loop still shows: a sample due during the block
 * records all of it.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/** A registry of its own (never prom-client's global one), with Node's process metrics. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return registry;
}

/** Seconds buckets from a millisecond to an hour: queue waits and run times span all of it. */
export const WIDE_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Seconds buckets for RPC handling and store commits. */
export const SHORT_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
