/**
 * Summarises a V8 .cpuprofile: self time per function and per package, heaviest first.
 *   npx tsx bench/tools/profile-top.ts .bench/profiles/server-*.cpuprofile [--top 40] [--skip-ms 3000]
 * `--skip-ms` leaves out the first samples (start-up: module loading, JIT warm-up).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '40' }, 'skip-ms': { type: 'string', default: '0' } },
  allowPositionals: true,
});
const skipUs = Number(values['skip-ms']) * 1000;

/** Self time per key over the samples after the skipped start. */
function tally(profile: Profile, keyOf: (node: Node) => string): { total: number; byKey: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byKey = new Map<string, number>();
  let elapsed = 0;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    elapsed += dt;
    if (elapsed < skipUs) return;
    const key = keyOf(byId.get(id)!);
    byKey.set(key, (byKey.get(key) ?? 0) + dt);
    total += dt;
  });
  return { total, byKey };
}

function print(title: string, { total, byKey }: { total: number; byKey: Map<string, number> }, top: number): void {
  console.log(`\n${title}`);
  for (const [key, us] of [...byKey].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
}

const byFunction = ({ callFrame: { functionName, url, lineNumber } }: Node) => {
  const where = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/');
  return `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
};

const byPackage = ({ callFrame: { functionName, url } }: Node) =>
  url.includes('node_modules/')
    ? url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')
    : url.includes('/src/') || url.includes('/gen/')
      ? url.replace(/^.*\/(src|gen)\/(ts\/)?([^/]+).*$/, '$1/$3')
      : url.startsWith('node:')
        ? 'node internals'
        : functionName.startsWith('(')
          ? functionName
          : 'native';

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const functions = tally(profile, byFunction);
  print(`${file}: ${(functions.total / 1000).toFixed(0)} ms sampled`, functions, Number(values.top));
  print(`${file}: by package`, tally(profile, byPackage), 20);
}
