import { describe, expect, it } from 'vitest';
import { EchoRequest } from '../gen/ts/demo/v1/demo.js';
import type { ConnectRequest, ConnectResponse } from '../gen/ts/taskwire/v1/worker_service.js';
import { attemptKey, durationToMs, mergeMessages, msToDuration, typeUrl, typeUrlOf } from '../src/contract.js';

describe('contract helpers', () => {
  it('builds type URLs from a message name or a generated type', () => {
    expect(typeUrl('demo.v1.EchoRequest')).toBe('type.googleapis.com/demo.v1.EchoRequest');
    expect(typeUrlOf(EchoRequest)).toBe('type.googleapis.com/demo.v1.EchoRequest');
    expect(() => typeUrlOf({})).toThrow(/has no \$type/);
  });

  it('turns milliseconds into a Duration and back', () => {
    expect(msToDuration(undefined)).toBeUndefined();
    expect(durationToMs(undefined)).toBeUndefined();
    expect(msToDuration(0)).toEqual({ seconds: 0, nanos: 0 });
    expect(msToDuration(90_250)).toEqual({ seconds: 90, nanos: 250_000_000 });
    // A fraction of a millisecond rounds, and never to 1,000 ms of nanos.
    expect(msToDuration(1999.7)).toEqual({ seconds: 2, nanos: 0 });
    expect(durationToMs({ seconds: 3, nanos: 1_600_000 })).toBe(3002);
    for (const ms of [0, 1, 999, 1000, 86_400_123]) expect(durationToMs(msToDuration(ms))).toBe(ms);
  });

  it('keys an attempt by task id and attempt number', () => {
    expect(attemptKey('0190-abc', 3)).toBe('0190-abc#3');
    expect(attemptKey('a', 12)).not.toBe(attemptKey('a1', 2));
  });
});

describe('mergeMessages', () => {
  const emptyRequest = (): ConnectRequest => ({ hello: undefined, credit: 0, completes: [], fails: [], progress: [], releases: [], heartbeat: false });
  const ref = (n: number) => ({ taskId: `t${n}`, attempt: 1 });

  it('concatenates repeated fields in order, adds credit, ors flags, keeps the last message field', () => {
    const hello = { workerId: 'w' } as ConnectRequest['hello'];
    const merged = mergeMessages(emptyRequest, [
      { credit: 2, completes: [{ ...ref(1), output: undefined }] },
      { heartbeat: true, hello },
      { credit: 3, heartbeat: false, completes: [{ ...ref(2), output: undefined }], releases: [ref(3)] },
    ]);
    expect(merged.credit).toBe(5);
    expect(merged.heartbeat).toBe(true);
    expect(merged.hello).toBe(hello);
    expect(merged.completes.map((c) => c.taskId)).toEqual(['t1', 't2']);
    expect(merged.releases).toEqual([ref(3)]);
    expect(merged.fails).toEqual([]);
  });

  it('makes a complete message from one item, and never shares the item’s arrays', () => {
    const cancels = [{ ...ref(1), reason: 'cancelled' }];
    const part: Partial<ConnectResponse> = { cancels };
    const empty = (): ConnectResponse => ({ welcome: undefined, assignments: [], cancels: [], drain: undefined, rejected: [], acknowledged: [], rejections: [] });
    const merged = mergeMessages(empty, [part]);
    expect(merged).toEqual({ ...empty(), cancels });
    merged.cancels.push({ ...ref(2), reason: 'x' });
    expect(cancels).toHaveLength(1);
    expect(mergeMessages(empty, [])).toEqual(empty());
  });
});
