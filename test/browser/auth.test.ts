import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startCli, type Proc } from '../helpers/processes.js';
import { launchChromium } from './browser.js';

const work = mkdtempSync(join(tmpdir(), 'taskwire-ui-auth-'));
const procs: Proc[] = [];
let browser: Browser;
let base: string;

async function submitAs(token: string): Promise<string> {
  const response = await fetch(`${base}/taskwire.v1.TaskService/SubmitTask`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ type: '/demo.v1.DemoService/Echo', input: { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text: 'hi' } }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { task: { id: string } }).task.id;
}

async function useToken(page: Page, token: string) {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Use token' }).click();
}

beforeAll(async () => {
  const server = startCli(['server', '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--db', join(work, 'db')], {
    TASKWIRE_TOKENS: 'admin:admin-secret,client:client-secret',
  });
  procs.push(server);
  const http = await server.waitForLine((l) => l.msg === 'HTTP listening (Connect, gRPC-Web)');
  base = `http://127.0.0.1:${http.port as number}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await killAll(procs);
  rmSync(work, { recursive: true, force: true });
});

describe('the dashboard on a server that requires a token', () => {
  it('says so plainly, takes a pasted token for the browser session only', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.getByText('This server requires a token. Paste one above').first().waitFor({ timeout: 10_000 });
    await useToken(page, 'wrong');
    await page.getByText('The token was refused').first().waitFor({ timeout: 10_000 });
    await useToken(page, 'admin-secret');
    await page.getByText('No tasks yet — submit one with').waitFor({ timeout: 10_000 });
    await page.reload();
    await page.getByText('No tasks yet — submit one with').waitFor({ timeout: 10_000 });
    expect(await page.evaluate('sessionStorage.getItem("taskwire.token")')).toBe('admin-secret');
    expect(await page.evaluate('localStorage.length')).toBe(0);
    await context.close();
    // A new browser session starts without it.
    const fresh = await browser.newContext();
    const again = await fresh.newPage();
    await again.goto(`${base}/`);
    await again.getByText('This server requires a token').first().waitFor({ timeout: 10_000 });
    await fresh.close();
  });

  it('shows only the actions the role allows', async () => {
    const id = await submitAs('client-secret'); // no worker: it stays queued
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/#/tasks/${id}`);
    await useToken(page, 'client-secret');
    await page.locator('h1 .state', { hasText: /^queued$/ }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await page.locator('h1 .state', { hasText: /^cancelled$/ }).waitFor({ timeout: 10_000 });
    // RetryTask is the admin's: a client sees no Retry button.
    await page.getByText('cancelled from the dashboard').first().waitFor();
    expect(await page.getByRole('button', { name: 'Retry task' }).count()).toBe(0);
    // The lists are the admin's too: the overview says what the role may not do.
    await page.goto(`${base}/#/`);
    await page.getByText("Your token's role may not do this").first().waitFor({ timeout: 10_000 });

    await useToken(page, 'admin-secret');
    await page.goto(`${base}/#/tasks/${id}`);
    await page.getByRole('button', { name: 'Retry task' }).click();
    await page.locator('h1 .state', { hasText: /^queued$/ }).waitFor({ timeout: 10_000 });
    await context.close();
  });

  it("shows the server's refusal when a queue control is used without the admin role", async () => {
    await submitAs('client-secret'); // a queue to show
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await useToken(page, 'admin-secret');
    const row = page.locator('tr:has(th a:text-is("default"))');
    await row.getByRole('button', { name: 'Pause queue default' }).click();
    // The token is swapped for a client's under the open page (as when an admin token is rotated
    // out): the buttons are still there, and the server, not the page, has the last word.
    await page.evaluate('sessionStorage.setItem("taskwire.token", "client-secret")');
    await row.getByRole('button', { name: 'Pause queue', exact: true }).click();
    await row.getByText("Your token's role may not do this").waitFor({ timeout: 10_000 });
    expect(await row.locator('.state.paused').count()).toBe(0);
    await context.close();
  });
});
