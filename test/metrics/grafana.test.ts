import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoRequest, FailRequest } from '../../gen/ts/demo/v1/demo.js';
import { pack } from '../../src/client/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';
import { scrape, type Sample } from './scrape.js';

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/taskwire.json', import.meta.url), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ query?: string }> };
};

/** Metric names a PromQL expression reads: identifiers followed by a selector, a range or a closing paren. */
function metricsIn(expr: string): string[] {
  const names = [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=[{[)])/g)].map((m) => m[1]!);
  return names.filter((name) => /^(taskwire|process|nodejs)_/.test(name));
}

let stack: Awaited<ReturnType<typeof startStack>>;
let served: Set<string>;

beforeAll(async () => {
  stack = await startStack({ metricsListen: '127.0.0.1:0' });
  const worker = await stack.worker({ metricsListen: '127.0.0.1:0' });
  const client = stack.client();
  // Enough activity that every labelled series exists: a success, a retry and a dead letter.
  await client.run('/demo.v1.DemoService/Echo', pack(EchoRequest, { text: 'x' }));
  await client.run('/demo.v1.DemoService/Fail', pack(FailRequest, { failAttempts: 0 }), { maxAttempts: 2, backoff: { initialMs: 10, maxMs: 10 } });
  await client.workers(); // a unary call: the session stream above is counted only when it ends
  const fromServer = await scrape(stack.server.metricsPort!);
  const fromWorker = await waitFor(async () => {
    const samples = await scrape(worker.metricsPort!);
    return samples.some((s) => s.name === 'taskwire_worker_tasks_total' && s.labels.outcome === 'failed') ? samples : undefined;
  }, { what: 'the worker to count its failed attempts' });
  served = new Set([...fromServer, ...fromWorker].map((s: Sample) => s.name));
});

afterAll(async () => {
  await stack?.stop();
});

describe('deploy/grafana/taskwire.json', () => {
  it('queries only metrics that a running server or worker serves at /metrics', () => {
    const queried = new Set([
      ...dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricsIn(t.expr))),
      ...dashboard.templating.list.flatMap((v) => metricsIn(v.query ?? '')),
    ]);
    expect(queried.size).toBeGreaterThan(15);
    expect([...queried].filter((name) => !served.has(name)).sort()).toEqual([]);
  });

  it('has a query in every panel, and panels for backlog, oldest age, dead letters and workers', () => {
    for (const panel of dashboard.panels) expect(panel.targets.length, panel.title).toBeGreaterThan(0);
    const all = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const name of ['taskwire_tasks{', 'taskwire_queue_oldest_waiting_seconds', 'taskwire_tasks_dead_lettered_total', 'taskwire_workers_connected']) {
      expect(all).toContain(name);
    }
  });
});
