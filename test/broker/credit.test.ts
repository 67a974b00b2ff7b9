import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Credit, type Reservation } from '../../src/broker/credit.js';
import { WorkerSession } from '../../src/broker/session.js';
import type { WorkerSink } from '../../src/broker/types.js';
import type { Lease } from '../../src/store/index.js';

const sink: WorkerSink = { acknowledge() {}, send() {}, close() {} };
const hello = (slots: number) => ({ workerId: 'w', taskTypes: ['t'], slots, labels: {}, version: '', peer: '', resume: [] });
const lease = (n: number): Lease =>
  ({ id: `task-${n}`, attempt: 1, type: 't', input: { typeUrl: '', value: new Uint8Array() } }) as unknown as Lease;

describe('Credit', () => {
  it('starts at the slots less the leases held, and takes no more than is free', () => {
    const credit = new Credit(4, 1);
    expect(credit.free).toBe(3);
    const reservation = credit.take(10)!;
    expect(reservation.count).toBe(3);
    expect(credit.free).toBe(0);
    expect(credit.reserved).toBe(3);
    expect(credit.take(1)).toBeUndefined();
  });

  it('gives back what a reservation did not use, once', () => {
    const credit = new Credit(4, 0);
    const reservation = credit.take(4)!;
    reservation.settle(1);
    expect(credit.free).toBe(3);
    expect(credit.reserved).toBe(0);
    expect(() => reservation.settle(0)).toThrow(/settled twice/);
    expect(credit.free).toBe(3);
  });

  it('refuses to settle more than was reserved', () => {
    const reservation = new Credit(2, 0).take(2)!;
    expect(() => reservation.settle(3)).toThrow(/cannot have used 3/);
    expect(reservation.settled).toBe(false);
  });

  it('never grants past the slots, counting what is reserved and held', () => {
    const credit = new Credit(4, 0);
    const reservation = credit.take(2)!;
    credit.grant(100, 1);
    expect(credit.free).toBe(1); // 4 slots - 1 held - 2 reserved
    reservation.settle(0);
    expect(credit.free + credit.reserved).toBeLessThanOrEqual(4 - 1);
  });

  it('keeps free + reserved + held ≤ slots, with every reservation settled exactly once, whatever the order', () => {
    type Step = { op: 'take'; n: number } | { op: 'settle'; pick: number; used: number } | { op: 'finish'; pick: number } | { op: 'grant'; n: number };
    const step = fc.oneof(
      fc.record({ op: fc.constant('take' as const), n: fc.integer({ min: 0, max: 12 }) }),
      fc.record({ op: fc.constant('settle' as const), pick: fc.nat(), used: fc.nat() }),
      fc.record({ op: fc.constant('finish' as const), pick: fc.nat() }),
      fc.record({ op: fc.constant('grant' as const), n: fc.integer({ min: -2, max: 12 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 10 }), fc.array(step, { maxLength: 60 }), (slots, resumed, steps: Step[]) => {
        let held = Math.min(resumed, slots);
        const credit = new Credit(slots, held);
        const open: Reservation[] = [];
        for (const s of steps) {
          if (s.op === 'take') {
            const r = credit.take(s.n);
            if (r !== undefined) open.push(r);
          } else if (s.op === 'settle' && open.length > 0) {
            const r = open.splice(s.pick % open.length, 1)[0]!;
            const used = s.used % (r.count + 1);
            held += used; // the leases are added before the reservation settles
            r.settle(used);
          } else if (s.op === 'finish' && held > 0) {
            held--; // a result ended a lease; the worker returns its slot
            credit.grant(1, held);
          } else if (s.op === 'grant') {
            credit.grant(s.n, held);
          }
          expect(credit.free).toBeGreaterThanOrEqual(0);
          expect(credit.free + credit.reserved + held).toBeLessThanOrEqual(slots);
          expect(credit.reserved).toBe(open.reduce((sum, r) => sum + r.count, 0));
        }
        for (const r of open) r.settle(0);
        expect(credit.reserved).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('WorkerSession credit', () => {
  it('counts resumed attempts as held slots', () => {
    const session = new WorkerSession('s', hello(3), sink, [{ id: 'a', attempt: 1, type: 't' }] as never);
    expect(session.credit).toBe(2);
    expect(session.running).toBe(1);
  });

  it('a lease ended and its slot returned makes the slot free again, never more', () => {
    const session = new WorkerSession('s', hello(2), sink, []);
    const reservation = session.take(2)!;
    session.assign([lease(1), lease(2)]);
    reservation.settle(2);
    expect(session.credit).toBe(0);
    session.grant(5); // a worker that returns more than it has: clamped to its slots
    expect(session.credit).toBe(0);
    expect(session.endLease('task-1', 1)).toMatchObject({ id: 'task-1', type: 't' });
    expect(session.endLease('task-1', 1)).toBeUndefined();
    session.grant(1);
    expect(session.credit).toBe(1);
  });

  it('takes nothing once draining or closed, and is closed once', () => {
    const draining = new WorkerSession('s', hello(2), sink, []);
    draining.drain();
    expect(draining.credit).toBe(0);
    expect(draining.take(1)).toBeUndefined();
    const closing = new WorkerSession('s', hello(2), sink, []);
    expect(closing.close()).toBe(true);
    expect(closing.close()).toBe(false);
    expect(closing.take(1)).toBeUndefined();
  });
});
