/**
 * npm run bench -- [--target taskwire,grpc,rabbitmq,...|all] [--n 20000] [--workers 4] [--size 100]
 *                  [--mode throughput|latency] [--rate 1000] [--duration 10] [--settle 0] [--inflight 2000] [--slots 32]
 *                  [--runs 3] [--json]
 *
 * Each run starts the target's broker/server and worker processes, then a
 * producer process; tasks/s is end to end (submit → result seen by the
 * producer), CPU per task is utime+stime from /proc summed over producer,
 * server or broker (where it is our process) and workers, over the measured
 * part only. Figures are medians over --runs rounds; each round runs every
 * target once, so that a ratio between two targets (the targets table at the
 * end) is taken within a round, at one moment of the machine. In latency mode,
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
const mode = values.mode;
if (mode !== 'throughput' && mode !== 'latency') throw new Error('--mode is throughput or latency');

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

const paramsOf = (name: string): BenchParams => ({
  target: name,
  n: Number(values.n),
  workers: Number(values.workers),
  size: Number(values.size),
  mode,
  rate: Number(values.rate),
  durationS: Number(values.duration),
  settleS: Number(values.settle),
  inflight: Number(values.inflight),
  slots: Number(values.slots),
});

// Rounds, not one target's runs back to back: each round runs every target once, so the
// targets of one round meet the machine in the same minutes, and a ratio between two of
// them can be taken within a round (see RATIOS) before the median over rounds.
const byTarget = new Map<string, { runs: Array<RunResult | undefined>; error?: string }>(names.map((name) => [name, { runs: [] }]));
for (let round = 0; round < Number(values.runs); round++) {
  for (const name of names) {
    const row = byTarget.get(name)!;
    if (row.error !== undefined) {
      row.runs.push(undefined);
      continue;
    }
    try {
      const result = await runOnce(paramsOf(name));
      row.runs.push(result);
      if (!values.json) process.stderr.write(`${name} run ${round + 1}: ${JSON.stringify(result)}\n`);
    } catch (failure) {
      // One target failing (its broker down, say) does not lose the others' figures.
      row.error = failure instanceof Error ? failure.message : String(failure);
      row.runs.push(undefined);
      process.stderr.write(`${name}: ${row.error}\n`);
    }
  }
}

const rows: Array<{ target: string; runs: RunResult[]; median: RunResult; error?: string }> = [];
for (const [name, row] of byTarget) {
  const runs = row.runs.filter((r): r is RunResult => r !== undefined);
  const error = row.error;
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

/**
 * The ratios the latency issue sets as targets (BENCHMARKS.md, section 14), each
 * one figure of target `of` over the same figure of target `to`, within each round,
 * then the median over rounds. Printed for those whose two targets ran in this mode.
 */
type Figure = 'p50' | 'p90' | 'p99' | 'tasksPerSecond' | 'cpuUsPerTask';
interface Ratio {
  readonly mode: 'latency' | 'throughput';
  readonly figure: Figure;
  readonly of: string;
  readonly to: string;
  /** The ratio met when at most (`max`) or at least (`min`) this. */
  readonly max?: number;
  readonly min?: number;
}
const RATIOS: readonly Ratio[] = [
  { mode: 'latency', figure: 'p99', of: 'taskwire', to: 'rabbitmq', max: 1 },
  { mode: 'latency', figure: 'p50', of: 'taskwire', to: 'rabbitmq', max: 1.5 },
  // At one rate, CPU per task is cores busy.
  { mode: 'latency', figure: 'cpuUsPerTask', of: 'taskwire', to: 'rabbitmq', max: 1 },
  { mode: 'latency', figure: 'p50', of: 'taskwire-call', to: 'taskwire', max: 1.2 },
  { mode: 'latency', figure: 'p90', of: 'taskwire-call', to: 'taskwire', max: 1.2 },
  { mode: 'latency', figure: 'p99', of: 'taskwire-call', to: 'taskwire', max: 1.2 },
  { mode: 'latency', figure: 'p50', of: 'taskwire-gateway', to: 'taskwire', max: 2 },
  { mode: 'throughput', figure: 'tasksPerSecond', of: 'taskwire-gateway', to: 'grpc-unary', min: 0.9 },
  { mode: 'throughput', figure: 'tasksPerSecond', of: 'taskwire', to: 'rabbitmq-quorum', min: 1.3 },
  { mode: 'throughput', figure: 'tasksPerSecond', of: 'taskwire', to: 'grpc-each', min: 0.7 },
  { mode: 'throughput', figure: 'cpuUsPerTask', of: 'taskwire', to: 'rabbitmq', max: 0.7 },
];

function ratios(): Array<{ ratio: Ratio; perRound: number[]; median: number; met: boolean }> {
  const out = [];
  for (const ratio of RATIOS) {
    const of = byTarget.get(ratio.of);
    const to = byTarget.get(ratio.to);
    if (ratio.mode !== mode || of === undefined || to === undefined) continue;
    const perRound: number[] = [];
    of.runs.forEach((run, round) => {
      const a = run?.[ratio.figure];
      const b = to.runs[round]?.[ratio.figure];
      if (a !== undefined && b !== undefined && b > 0) perRound.push(a / b);
    });
    if (perRound.length === 0) continue;
    const value = median(perRound);
    out.push({ ratio, perRound, median: value, met: ratio.max !== undefined ? value <= ratio.max : value >= ratio.min! });
  }
  return out;
}

if (values.json) {
  console.log(JSON.stringify({ params: values, machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version }, rows, ratios: ratios() }, null, 2));
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
  const measured = ratios();
  if (measured.length > 0) {
    console.log('\nTargets, each ratio taken within a round, median over rounds:\n');
    console.log('| ratio | per round | median | target | met |');
    console.log('|---|---|---:|---|---|');
    const label: Record<Figure, string> = { p50: 'p50', p90: 'p90', p99: 'p99', tasksPerSecond: 'tasks/s', cpuUsPerTask: 'CPU/task' };
    for (const { ratio, perRound, median: value, met } of measured) {
      const bar = ratio.max !== undefined ? `≤ ${ratio.max}` : `≥ ${ratio.min}`;
      console.log(`| ${ratio.of} ${label[ratio.figure]} / ${ratio.to} ${label[ratio.figure]} | ${perRound.map((r) => r.toFixed(2)).join(', ')} | ${value.toFixed(2)} | ${bar} | ${met ? 'yes' : 'no'} |`);
    }
  }
}
