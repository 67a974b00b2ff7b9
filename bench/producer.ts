/**
 * The producer: its own process. Submits tasks to one target and measures
 * submit → result as seen here. Prints {"event":"start"} when the measured
 * part begins (after a warm-up) and {"event":"done", ...} with its figures.
 */
import { performance } from 'node:perf_hooks';
import { payload, percentile, type BenchParams } from './lib.js';
import { targets } from './targets/index.js';

const params = JSON.parse(process.argv[2]!) as BenchParams;
const info = JSON.parse(process.argv[3]!) as Record<string, unknown>;
const target = targets[params.target]!;
const producer = await target.producer(params, info);
const body = payload(params.size);
const emit = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** Runs `count` tasks keeping `inflight` in flight; resolves when all results are in. */
function throughput(count: number, inflight: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const launch = () => {
      while (sent < count && sent - done < inflight) {
        sent++;
        producer.run(body).then(() => {
          done++;
          if (done === count) resolve();
          else launch();
        }, reject);
      }
    };
    launch();
  });
}

/** Submits at a fixed rate for a while; returns each task's submit → result latency in ms. */
async function latency(rate: number, durationS: number): Promise<number[]> {
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round(rate * durationS);
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
    for (; sent < due; sent++) {
      const t0 = performance.now();
      pending.push(producer.run(body).then(() => void latencies.push(performance.now() - t0)));
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return latencies;
}

// Warm-up: a tenth of the run, at most 10,000 tasks, so every process's hot paths are compiled
// (V8 optimises a function after many calls) before the measured part begins.
await throughput(Math.min(10_000, Math.max(200, Math.floor(params.n / 10))), params.inflight);
if (params.mode === 'latency' && params.settleS > 0) await latency(params.rate, params.settleS);
emit({ event: 'start' });
const t0 = performance.now();
if (params.mode === 'throughput') {
  await throughput(params.n, params.inflight);
  const seconds = (performance.now() - t0) / 1000;
  emit({ event: 'done', tasks: params.n, seconds, tasksPerSecond: params.n / seconds });
} else {
  const latencies = (await latency(params.rate, params.durationS)).sort((a, b) => a - b);
  const seconds = (performance.now() - t0) / 1000;
  emit({
    event: 'done',
    tasks: latencies.length,
    seconds,
    tasksPerSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
  });
}
await producer.close();
process.exit(0);
