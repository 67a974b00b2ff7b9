import { execFileSync, spawn } from 'node:child_process';
import { Proc } from '../helpers/processes.js';

/**
 * A small network of the test's own: one namespace per host, each with a
 * veth pair to a bridge that lives in a namespace of its own. Nothing runs in
 * the host's namespace that talks to this subnet: the server, the workers and
 * the client all run inside their namespaces (`ip netns exec`).
 */
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const inNs = (ns: string, ...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: 'pipe' });

export interface Network {
  readonly address: (host: string) => string;
  /** Runs a node process inside a host's namespace. */
  node(host: string, args: readonly string[], env?: NodeJS.ProcessEnv): Proc;
  /** Drops every packet to and from a host, silently (no reset): a partition. */
  partition(host: string): void;
  /** Drops a share of the host's packets at random, both ways. */
  loss(host: string, percent: number): void;
  /** Removes the host's drop rules. */
  heal(host: string): void;
  destroy(): void;
}

let counter = 0;

export function createNetwork(hosts: readonly string[]): Network {
  const id = `${process.pid % 1000}${counter++}`;
  const subnet = `10.${200 + (counter % 50)}.${process.pid % 250}`;
  const bridgeNs = `twb${id}`;
  const ns = (host: string) => `tw${id}${host}`;
  const addresses = new Map<string, string>();
  const created: string[] = [];
  try {
    ip('netns', 'add', bridgeNs);
    created.push(bridgeNs);
    inNs(bridgeNs, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    inNs(bridgeNs, 'ip', 'link', 'set', 'br0', 'up');
    hosts.forEach((host, i) => {
      const name = ns(host);
      ip('netns', 'add', name);
      created.push(name);
      ip('link', 'add', `v${id}${i}a`, 'type', 'veth', 'peer', 'name', `v${id}${i}b`);
      ip('link', 'set', `v${id}${i}a`, 'netns', name);
      ip('link', 'set', `v${id}${i}b`, 'netns', bridgeNs);
      inNs(name, 'ip', 'link', 'set', `v${id}${i}a`, 'name', 'eth0');
      const address = `${subnet}.${i + 10}`;
      addresses.set(host, address);
      inNs(name, 'ip', 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      inNs(name, 'ip', 'link', 'set', 'eth0', 'up');
      inNs(name, 'ip', 'link', 'set', 'lo', 'up');
      inNs(bridgeNs, 'ip', 'link', 'set', `v${id}${i}b`, 'master', 'br0');
      inNs(bridgeNs, 'ip', 'link', 'set', `v${id}${i}b`, 'up');
    });
  } catch (error) {
    for (const name of created) ip('netns', 'del', name);
    throw error;
  }

  const rules = (host: string, match: string) => {
    inNs(ns(host), 'nft', 'add', 'table', 'inet', 'fault');
    for (const hook of ['input', 'output']) {
      inNs(ns(host), 'nft', 'add', 'chain', 'inet', 'fault', hook, `{ type filter hook ${hook} priority 0 ; }`);
      inNs(ns(host), 'nft', 'add', 'rule', 'inet', 'fault', hook, ...`oifname != "lo" iifname != "lo" ${match} drop`.split(' '));
    }
  };

  return {
    address: (host) => addresses.get(host)!,
    node(host, args, env = {}) {
      return new Proc(
        spawn('ip', ['netns', 'exec', ns(host), process.execPath, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, ...env },
        }),
      );
    },
    partition(host) {
      rules(host, 'meta l4proto tcp');
    },
    loss(host, percent) {
      rules(host, `meta l4proto tcp numgen random mod 100 < ${percent}`);
    },
    heal(host) {
      inNs(ns(host), 'nft', 'delete', 'table', 'inet', 'fault');
    },
    destroy() {
      for (const name of [...hosts.map(ns), bridgeNs]) {
        try {
          ip('netns', 'del', name);
        } catch {
          // already gone
        }
      }
    },
  };
}
