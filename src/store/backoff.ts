import type { BackoffPolicy } from './types.js';

/**
 * Exponential backoff with jitter: initial * multiplier^(failures-1), capped
 * at max, then a random fraction `jitter` taken off so that tasks failing
 * together do not retry together.
 */
export function exponentialBackoff(failures: number, backoff: BackoffPolicy): number {
  const exponential = backoff.initialMs * backoff.multiplier ** Math.max(0, failures - 1);
  const capped = Math.min(backoff.maxMs, exponential);
  return Math.round(capped * (1 - backoff.jitter * Math.random()));
}
