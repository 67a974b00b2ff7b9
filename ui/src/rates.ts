import type { QueueStats } from '../gen/taskwire/v1/task_service_pb.js';

/** One sample of the totals, as GetQueueStats gives them. */
interface Sample {
  readonly at: number;
  readonly all: number;
  readonly finished: number;
}

export interface Rate {
  readonly at: number;
  readonly submitted: number;
  readonly finished: number;
}

const WINDOW_MS = 5 * 60_000;
const samples: Sample[] = [];

/**
 * Submitted and finished per second, from the change in the counts between
 * polls (the API has counts, not rates): every task ever stored is one more
 * in some state; a finished one is one more succeeded, failed or cancelled.
 * Kept for the page's lifetime, over the last five minutes.
 */
export function record(queues: readonly QueueStats[], at = Date.now()): Rate[] {
  let all = 0;
  let finished = 0;
  for (const q of queues) {
    const done = Number(q.succeeded + q.failed + q.cancelled);
    finished += done;
    all += done + Number(q.scheduled + q.queued + q.running);
  }
  samples.push({ at, all, finished });
  while (samples.length > 2 && samples[0]!.at < at - WINDOW_MS) samples.shift();
  const rates: Rate[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    const s = (b.at - a.at) / 1000;
    // Retention deletes finished tasks: a count that falls is not a negative rate.
    if (s > 0) rates.push({ at: b.at, submitted: Math.max(0, b.all - a.all) / s, finished: Math.max(0, b.finished - a.finished) / s });
  }
  return rates;
}
