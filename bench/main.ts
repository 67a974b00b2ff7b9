/**
 * npm run bench -- [--target taskwire,grpc,rabbitmq,...|all] [--n 20000] [--workers 4] [--size 100]
 *                  [--mode throughput|latency] [--rate 1000] [--duration 10] [--settle 0] [--inflight 2000] [--slots 32]
 *                  [--runs 3] [--json]
 *
 * Each run starts the target's broker/server and worker processes, then a
 * producer process; tasks/s is end to end (submit → result seen by the
 * producer), CPU per task is utime+stime from /proc summed over producer,
 * server or broker (where it is our process) and workers, over the measured
 * part only. Figures are medians over --runs runs. In latency mode,
 * --settle S runs S seconds at the rate, unmeasured, before the measured part
 * (the steady state of a process that has long been running and scraped).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { cpuMs, cpuSplitMs, median, rssMb, startScript, type BenchParams } from './lib.js';
import { targets } from './targets/index.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'all' },
    n: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '4' },
    size: { type: 'string', default: '100' },
    mode: { type: 'string', default: 'throughput' },
    rate: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    settle: { type: 'string', default: '0' },
    inflight: { type: 'string', default: '2000' },
    slots: { type: 'string', default: '32' },
    runs: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});

const names = values.target === 'all' ? Object.keys(targets) : values.target!.split(',');
for (const name of names) if (!targets[name]) throw new Error(`unknown target ${name}; known: ${Object.keys(targets).join(', ')}`);
if (values.mode !== 'throughput' && values.mode !== 'latency') throw new Error('--mode is throughput or latency');

interface RunResult {
  tasksPerSecond: number;
  cpuUsPerTask: number;
  cpuUsPerTaskByRole?: Record<string, number>;
  /** The part of cpuUsPerTask spent in the kernel (syscalls, network). */
  kernelUsPerTask?: number;
  serverRssMb?: number;
  p50?: number;
  p90?: number;
  p99?: number;
}

async function runOnce(params: BenchParams): Promise<RunResult> {
  const target = targets[params.target]!;
  const setup = await target.setup(params);
  try {
    const producer = startScript('producer', 'producer.ts', [JSON.stringify(params), JSON.stringify(setup.info)]);
    await producer.waitFor((l) => l.event === 'start', 120_000);
    const children: Array<{ name: string; pid: number }> = [producer, ...setup.children, ...(setup.external?.() ?? [])];
    const cpu = () => children.map((c) => cpuMs(c.pid));
    const before = cpu();
    const kernelBefore = children.reduce((sum, c) => sum + cpuSplitMs(c.pid).system, 0);
    const done = await producer.waitFor((l) => l.event === 'done', 600_000);
    const perChild = cpu().map((ms, i) => ms - before[i]!);
    const kernelMs = children.reduce((sum, c) => sum + cpuSplitMs(c.pid).system, 0) - kernelBefore;
    const used = perChild.reduce((a, b) => a + b, 0);
    // Where the CPU went, by role (the workers summed).
    const byRole: Record<string, number> = {};
    children.forEach((c, i) => {
      const role = c.name.replace(/-\d+$/, '');
      byRole[role] = (byRole[role] ?? 0) + (perChild[i]! * 1000) / Number(done.tasks);
    });
    const serverRssMb = setup.children[0] && params.target.startsWith('taskwire') ? rssMb(setup.children[0].pid) : undefined;
    await producer.exited;
    const tasks = Number(done.tasks);
    return {
      tasksPerSecond: Number(done.tasksPerSecond),
      cpuUsPerTask: (used * 1000) / tasks,
      cpuUsPerTaskByRole: Object.fromEntries(Object.entries(byRole).map(([k, v]) => [k, Math.round(v)])),
      kernelUsPerTask: Math.round((kernelMs * 1000) / tasks),
      ...(serverRssMb === undefined ? {} : { serverRssMb }),
      ...(done.p50 === undefined ? {} : { p50: Number(done.p50), p90: Number(done.p90), p99: Number(done.p99) }),
    };
  } finally {
    await setup.teardown();
  }
}

const rows: Array<{ target: string; runs: RunResult[]; median: RunResult; error?: string }> = [];
for (const name of names) {
  const params: BenchParams = {
    target: name,
    n: Number(values.n),
    workers: Number(values.workers),
    size: Number(values.size),
    mode: values.mode,
    rate: Number(values.rate),
    durationS: Number(values.duration),
    settleS: Number(values.settle),
    inflight: Number(values.inflight),
    slots: Number(values.slots),
  };
  const runs: RunResult[] = [];
  let error: string | undefined;
  for (let i = 0; i < Number(values.runs) && error === undefined; i++) {
    try {
      const result = await runOnce(params);
      runs.push(result);
      if (!values.json) process.stderr.write(`${name} run ${i + 1}: ${JSON.stringify(result)}\n`);
    } catch (failure) {
      // One target failing (its broker down, say) does not lose the others' figures.
      error = failure instanceof Error ? failure.message : String(failure);
      process.stderr.write(`${name}: ${error}\n`);
    }
  }
  if (runs.length === 0) {
    rows.push({ target: name, runs, median: { tasksPerSecond: NaN, cpuUsPerTask: NaN }, error: error! });
    continue;
  }
  const pick = (key: keyof RunResult) => {
    const present = runs.map((r) => r[key]).filter((v): v is number => v !== undefined);
    return present.length ? median(present) : undefined;
  };
  const med: RunResult = { tasksPerSecond: pick('tasksPerSecond')!, cpuUsPerTask: pick('cpuUsPerTask')! };
  const roles = new Set(runs.flatMap((r) => Object.keys(r.cpuUsPerTaskByRole ?? {})));
  med.cpuUsPerTaskByRole = Object.fromEntries([...roles].map((role) => [role, median(runs.map((r) => r.cpuUsPerTaskByRole?.[role] ?? 0))]));
  for (const key of ['serverRssMb', 'kernelUsPerTask', 'p50', 'p90', 'p99'] as const) {
    const value = pick(key);
    if (value !== undefined) med[key] = value;
  }
  rows.push({ target: name, runs, median: med, ...(error === undefined ? {} : { error }) });
}

if (values.json) {
  console.log(JSON.stringify({ params: values, machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rows }, null, 2));
} else {
  const latency = values.mode === 'latency';
  console.log(`\n${values.mode}: n=${values.n} workers=${values.workers} slots=${values.slots} size=${values.size}B` +
    (latency ? ` rate=${values.rate}/s duration=${values.duration}s` : ` inflight=${values.inflight}`) + `, median of ${values.runs} runs\n`);
  console.log(`| target | tasks/s | CPU µs/task | CPU by process (µs/task) |${latency ? ' p50 ms | p90 ms | p99 ms |' : ''}`);
  console.log(`|---|---:|---:|---|${latency ? '---:|---:|---:|' : ''}`);
  for (const row of rows) {
    const m = row.median;
    if (row.error !== undefined && row.runs.length === 0) {
      console.log(`| ${row.target} | failed: ${row.error.split('\n')[0]} | | |`);
      continue;
    }
    const byRole = Object.entries(m.cpuUsPerTaskByRole ?? {}).map(([role, us]) => `${role} ${Math.round(us)}`).join(', ');
    console.log(`| ${row.target} | ${Math.round(m.tasksPerSecond)} | ${Math.round(m.cpuUsPerTask)} | ${byRole} |` +
      (latency ? ` ${m.p50?.toFixed(2)} | ${m.p90?.toFixed(2)} | ${m.p99?.toFixed(2)} |` : ''));
  }
}
