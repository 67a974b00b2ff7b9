/**
 * Summarises a V8 .cpuprofile: self time per function, heaviest first.
 *   npx tsx bench/tools/profile-top.ts .bench/profiles/server-*.cpuprofile [--top 40]
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

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '40' } }, allowPositionals: true });
for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  console.log(`\n${file}: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
}

/** Also: self time per package or source folder. */
for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const groups = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const { url, functionName } = byId.get(id)!.callFrame;
    const group = url.includes('node_modules/')
      ? url.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')
      : url.includes('/src/') || url.includes('/gen/')
        ? url.replace(/^.*\/(src|gen)\/(ts\/)?([^/]+).*$/, '$1/$3')
        : url.startsWith('node:')
          ? 'node internals'
          : functionName.startsWith('(') ? functionName : 'native';
    const dt = profile.timeDeltas[i] ?? 0;
    groups.set(group, (groups.get(group) ?? 0) + dt);
    total += dt;
  });
  console.log(`\n${file}: by package`);
  for (const [group, us] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${group}`);
  }
}
