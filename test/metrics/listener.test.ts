import { createServer } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { listenForScrapes, type MetricsListener } from '../../src/metrics/index.js';

let listeners: MetricsListener[] = [];
afterEach(async () => {
  await Promise.all(listeners.map((l) => l.close()));
  listeners = [];
});

async function listen(registry: Registry, address = '127.0.0.1:0'): Promise<MetricsListener> {
  const listener = await listenForScrapes(address, registry);
  listeners.push(listener);
  return listener;
}

describe('the metrics listener', () => {
  it('serves the registry as it is at each scrape, HEAD without a body, and 404 elsewhere', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'listener_test_total', help: 'A test counter.', registers: [registry] });
    const { port } = await listen(registry);
    counter.inc(2);
    const first = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe(registry.contentType);
    expect(await first.text()).toContain('listener_test_total 2');
    counter.inc();
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics?x=1`)).text()).toContain('listener_test_total 3');
    const head = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const other = await fetch(`http://127.0.0.1:${port}/`);
    expect(other.status).toBe(404);
    expect(await other.text()).toBe('not found: metrics are at GET /metrics\n');
  });

  it('answers 500 with the reason when collecting fails', async () => {
    const registry = new Registry();
    new Counter({ name: 'listener_broken_total', help: 'Fails to collect.', registers: [registry], collect: () => Promise.reject(new Error('collector broke')) });
    const { port } = await listen(registry);
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(response.status).toBe(500);
    expect(await response.text()).toContain('collector broke');
  });

  it('names the flag when the port is taken, and frees its port on close', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    await expect(listenForScrapes(`127.0.0.1:${port}`, new Registry())).rejects.toThrow(
      `cannot listen on 127.0.0.1:${port} (the metrics listener): the port is in use;`,
    );
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    const listener = await listenForScrapes(`127.0.0.1:${port}`, new Registry());
    await listener.close();
    const again = await listen(new Registry(), `127.0.0.1:${port}`);
    expect(again.port).toBe(port);
  });
});
