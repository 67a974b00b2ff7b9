import { describe, expect, it } from 'vitest';
import { ReconnectBackoff } from '../../src/rpc/backoff.js';

describe('ReconnectBackoff', () => {
  it('doubles from min to max, each wait jittered into the upper half of its step, and resets', () => {
    const backoff = new ReconnectBackoff(100, 1_000);
    const steps = [100, 200, 400, 800, 1_000, 1_000];
    for (const step of steps) {
      const wait = backoff.next();
      expect(wait).toBeGreaterThanOrEqual(step / 2);
      expect(wait).toBeLessThanOrEqual(step);
    }
    backoff.reset();
    expect(backoff.next()).toBeLessThanOrEqual(100);
  });

  it('spreads the waits of clients cut off together', () => {
    const waits = new Set(Array.from({ length: 50 }, () => Math.round(new ReconnectBackoff(1_000, 5_000).next())));
    expect(waits.size).toBeGreaterThan(10);
  });
});
