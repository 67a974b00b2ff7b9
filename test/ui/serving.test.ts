import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR } from '../../src/http/dashboard.js';
import { startHttpStack } from '../http/helpers.js';

/** The size budget for everything the dashboard ships, gzipped. */
const BUDGET = 150 * 1024;

let stack: Awaited<ReturnType<typeof startHttpStack>> | undefined;
afterEach(async () => {
  await stack?.server.shutdown();
  stack = undefined;
});

describe('the dashboard on the HTTP listener', () => {
  it(`ships under ${BUDGET / 1024} kB gzipped`, () => {
    const files = readdirSync(join(DASHBOARD_DIR, 'assets')).map((name) => join(DASHBOARD_DIR, 'assets', name));
    files.push(join(DASHBOARD_DIR, 'index.html'));
    const sizes = files.map((file) => gzipSync(readFileSync(file), { level: 9 }).length);
    const total = sizes.reduce((a, b) => a + b, 0);
    console.log(`dashboard: ${files.length} files, ${(total / 1024).toFixed(1)} kB gzipped`);
    expect(total).toBeGreaterThan(1000); // it was built
    expect(total).toBeLessThan(BUDGET);
  });

  it('serves the page and its assets with their types and caching, beside the RPCs', async () => {
    stack = await startHttpStack();
    const page = await fetch(`${stack.baseUrl}/`, { headers: { 'accept-encoding': 'gzip' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    const script = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    const style = /href="(\/assets\/style-[A-Z0-9]+\.css)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(style).toBeDefined();

    const js = await fetch(`${stack.baseUrl}${script}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await js.text()).length).toBeGreaterThan(1000);
    const css = await fetch(`${stack.baseUrl}${style}`, { method: 'HEAD' });
    expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);

    // RPCs are untouched: a Connect call on the same listener, and no file answers for an RPC path.
    const stats = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/GetQueueStats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([stats.status, await stats.json()]).toEqual([200, {}]);
    const get = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/GetQueueStats`);
    expect(get.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    const missing = await fetch(`${stack.baseUrl}/../../package.json`);
    expect(missing.headers.get('content-type') ?? '').not.toMatch(/text\/html|application\/json/);
  });

  it('is not served with the dashboard off (--no-dashboard)', async () => {
    stack = await startHttpStack({ dashboard: false });
    const page = await fetch(`${stack.baseUrl}/`);
    expect(page.status).not.toBe(200);
    expect(page.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
    const stats = await fetch(`${stack.baseUrl}/taskwire.v1.TaskService/GetQueueStats`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(stats.status).toBe(200);
  });
});
