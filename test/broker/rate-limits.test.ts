import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter, burstOf, rateLimitProblem } from '../../src/broker/rate-limits.js';

/** A limiter on a clock the test moves. */
function limiter() {
  let now = 0;
  const rates = new RateLimiter(() => now);
  return { rates, advance: (ms: number) => (now += ms), now: () => now };
}

describe('RateLimiter', () => {
  it('starts full, takes whole tokens, and says when the next one comes', () => {
    const { rates, advance } = limiter();
    rates.set('t', { perSecond: 4, burst: 3 });
    expect(rates.take('t', 10)).toBe(3);
    expect(rates.take('t', 1)).toBe(0);
    expect(rates.nextTokenMs('t')).toBe(250);
    advance(249);
    expect(rates.take('t', 1)).toBe(0);
    advance(1);
    expect(rates.take('t', 5)).toBe(1);
    rates.giveBack('t', 10); // never past the burst
    expect(rates.take('t', 10)).toBe(3);
  });

  it('leaves types without a limit alone', () => {
    const { rates } = limiter();
    expect(rates.limited('u')).toBe(false);
    expect(rates.take('u', 7)).toBe(7);
    expect(rates.nextTokenMs('u')).toBe(0);
  });

  it('splits rate and burst between the replicas that share them', () => {
    const { rates, advance } = limiter();
    rates.set('t', { perSecond: 10, burst: 10 });
    rates.setShare('t', 2);
    expect(rates.take('t', 100)).toBe(5);
    advance(1_000);
    expect(rates.take('t', 100)).toBe(5);
    rates.setShare('t', 20); // a burst below one still lets one task through
    advance(2_000);
    expect(rates.take('t', 100)).toBe(1);
    expect(rates.nextTokenMs('t')).toBe(2_000);
  });

  it('never starts more than burst + rate × elapsed, whatever the takes and give-backs', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 1000, noNaN: true }),
        fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1 })), { maxLength: 200 }),
        (perSecond, burst, steps) => {
          const { rates, advance, now } = limiter();
          const limit = { perSecond, ...(burst === undefined ? {} : { burst }) };
          rates.set('t', limit);
          let started = 0;
          for (const [ms, want, unused] of steps) {
            advance(ms);
            const taken = rates.take('t', want);
            expect(taken).toBeGreaterThanOrEqual(0);
            expect(taken).toBeLessThanOrEqual(want);
            const back = Math.min(unused, taken);
            rates.giveBack('t', back);
            started += taken - back;
            expect(started).toBeLessThanOrEqual(burstOf(limit) + (perSecond * now()) / 1000 + 1e-6);
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('names the field and the allowed range of a bad limit', () => {
    expect(rateLimitProblem({ perSecond: 0 }, '/a.B/C')).toBe('/a.B/C: rate_per_second must be a number above 0 and at most 1000000; got 0');
    expect(rateLimitProblem({ perSecond: Number.NaN }, 'x')).toMatch(/rate_per_second .* got NaN/);
    expect(rateLimitProblem({ perSecond: 1, burst: 0 }, 'x')).toBe('x: rate_burst must be an integer in 1..1000000; got 0');
    expect(rateLimitProblem({ perSecond: 1, burst: 1.5 }, 'x')).toMatch(/rate_burst/);
    expect(rateLimitProblem({ perSecond: 0.5 }, 'x')).toBeUndefined();
    expect(burstOf({ perSecond: 0.5 })).toBe(1);
    expect(burstOf({ perSecond: 7.2 })).toBe(8);
  });
});
