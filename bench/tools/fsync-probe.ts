/**
 * How this machine's disk answers fsync: the floor under every durable
 * commit, and the cause of most of a durable queue's tail latency. Writes
 * 8 KiB and fsyncs, about 500 times a second (the rate of commits at 1,000
 * tasks/s), for a bounded time, in a file of its own under the temp dir.
 *
 *   npx tsx bench/tools/fsync-probe.ts [seconds=8]
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from '../lib.js';

const seconds = Math.min(60, Number(process.argv[2] ?? 8));
const dir = mkdtempSync(join(tmpdir(), 'taskwire-fsync-'));
const fd = openSync(join(dir, 'probe'), 'w');
const block = Buffer.alloc(8192, 1);
const times: number[] = [];
const end = performance.now() + seconds * 1000;
try {
  for (let i = 0; performance.now() < end && i < seconds * 1000; i++) {
    writeSync(fd, block, 0, block.length, (i % 256) * block.length);
    const start = performance.now();
    fsyncSync(fd);
    times.push(performance.now() - start);
    // ~2 ms between commits, without a timer's millisecond granularity.
    const next = performance.now() + 1.5;
    while (performance.now() < next);
  }
} finally {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}
times.sort((a, b) => a - b);
const ms = (value: number) => value.toFixed(2);
console.log(
  `fsync of 8 KiB, ${times.length} times in ${seconds} s: p50 ${ms(percentile(times, 50))} ms, p99 ${ms(percentile(times, 99))}, ` +
    `p99.9 ${ms(percentile(times, 99.9))}, max ${ms(times.at(-1) ?? 0)}; over 20 ms: ${times.filter((t) => t > 20).length}`,
);
