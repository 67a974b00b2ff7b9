import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startServerProcess, startWorkerProcess, type Proc } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { fromBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { ListTasksRequestSchema, TaskOrder } from '../../ui/gen/taskwire/v1/task_service_pb.js';
import { launchChromium } from './browser.js';

// What the functions given to waitForFunction and evaluate use: they run in the page, not in Node.
interface PageElement {
  readonly textContent: string | null;
  readonly children: ArrayLike<PageElement>;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  readonly documentElement: { readonly scrollWidth: number; readonly clientWidth: number };
};
declare const location: { readonly hash: string };
declare function getComputedStyle(element: never): { readonly strokeDasharray: string };

// Screenshots go to a scratch directory; `TASKWIRE_SCREENSHOTS=docs/images npx vitest run --config vitest.browser.config.ts test/browser/dashboard.test.ts` refreshes the README's.
const work = mkdtempSync(join(tmpdir(), 'taskwire-ui-'));
const shots = resolve(process.env.TASKWIRE_SCREENSHOTS ?? join(work, 'shots'));
mkdirSync(shots, { recursive: true });

const procs: Proc[] = [];
let browser: Browser;
let page: Page;
let base: string;
let grpcAddress: string;
const outside: string[] = [];

async function submit(type: string, input: Record<string, unknown>, options: Record<string, unknown> = {}): Promise<string> {
  const response = await fetch(`${base}/taskwire.v1.TaskService/SubmitTask`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type, input, options }),
  });
  const body = (await response.json()) as { task: { id: string } };
  expect(response.status).toBe(200);
  return body.task.id;
}
const sleep = (durationMs: number, steps: number, options: Record<string, unknown> = {}) =>
  submit('/demo.v1.DemoService/Sleep', { '@type': 'type.googleapis.com/demo.v1.SleepRequest', durationMs, steps }, options);
const echo = (text: string, options: Record<string, unknown> = {}) => submit('/demo.v1.DemoService/Echo', { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text }, options);

const fail = (failAttempts: number, options: Record<string, unknown> = {}, code = 9) =>
  submit('/demo.v1.DemoService/Fail', { '@type': 'type.googleapis.com/demo.v1.FailRequest', message: 'no disk', failAttempts, permanent: true, code }, options);

async function getTask(id: string): Promise<{ state: string; attempt?: number }> {
  const response = await fetch(`${base}/taskwire.v1.TaskService/GetTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) });
  return ((await response.json()) as { task: { state: string; attempt?: number } }).task;
}
const settled = (ids: string[], state: string) =>
  waitFor(async () => (await Promise.all(ids.map(getTask))).every((t) => t.state === state), { timeoutMs: 15_000, intervalMs: 100, what: `${ids.length} tasks ${state}` });

/** The task detail's state word, waited for (bounded) as the WatchTask stream moves it. */
const stateIs = (state: string, timeout = 15_000) => page.locator('h1 .state', { hasText: new RegExp(`^${state}$`) }).waitFor({ timeout });

beforeAll(async () => {
  const server = await startServerProcess(join(work, 'db'), '127.0.0.1:0', ['--http-listen', '127.0.0.1:0']);
  procs.push(server.proc);
  grpcAddress = server.address;
  const http = await server.proc.waitForLine((l) => l.msg === 'HTTP listening (Connect, gRPC-Web)');
  base = `http://127.0.0.1:${http.port as number}`;
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1200, height: 820 } });
  page.on('request', (request) => {
    if (!request.url().startsWith(`${base}/`) && !request.url().startsWith('data:')) outside.push(request.url());
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await killAll(procs);
  rmSync(work, { recursive: true, force: true });
});

describe('the dashboard in a real browser', () => {
  it('says there is nothing yet, and what to do', async () => {
    await page.goto(`${base}/`);
    await page.getByText('No tasks yet — submit one with').waitFor({ timeout: 10_000 });
    await page.getByText('No workers connected — start one with').waitFor({ timeout: 10_000 });
  });

  it('follows a task from queued to running (with progress) to succeeded', async () => {
    const id = await sleep(2500, 10);
    await page.goto(`${base}/#/tasks/${id}`);
    await stateIs('queued');
    // With no worker yet it waits: the overview says for how long.
    await page.goto(`${base}/`);
    await page.waitForFunction(() => /^\d+ s$/.test(document.querySelector('tr:has(th a[href="#/tasks?queue=default"]) td[data-oldest]')?.textContent ?? ''), undefined, {
      timeout: 10_000,
    });
    await page.goto(`${base}/#/tasks/${id}`);
    await stateIs('queued');
    procs.push(startWorkerProcess(grpcAddress, 'browser-worker', ['--concurrency', '4']));
    await stateIs('running');
    // Live progress from the stream: a percentage strictly between 0 and 100 while it runs.
    await page.waitForFunction(
      () => {
        const m = /^(\d+)%/.exec(document.querySelector('[data-testid="progress"]')?.textContent ?? '');
        return m !== null && Number(m[1]) > 0 && Number(m[1]) < 100;
      },
      undefined,
      { timeout: 10_000 },
    );
    await page.screenshot({ path: join(shots, 'dashboard-task-running.png') });
    await stateIs('succeeded');
    // The output, decoded by the server with the task type's descriptor.
    await page.locator('pre.json', { hasText: '"sleptMs"' }).waitFor({ timeout: 10_000 });
    await page.locator('pre.json', { hasText: '"durationMs": 2500' }).waitFor({ timeout: 10_000 });
    await page.getByText('attempt 1 started').waitFor();
  });

  it('cancels a running Sleep task with the button', async () => {
    const id = await sleep(60_000, 60, { labels: { from: 'browser-test' } });
    await page.goto(`${base}/#/tasks/${id}`);
    await stateIs('running');
    await page.getByText('from=browser-test').waitFor();
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await stateIs('cancelled');
    await page.getByText('cancelled from the dashboard').first().waitFor();
    expect(await page.getByRole('button', { name: 'Cancel task' }).count()).toBe(0);
    // With no token, every action is allowed: a cancelled task can be retried.
    await page.getByRole('button', { name: 'Retry task' }).waitFor();
  });

  it('lists tasks newest first, filters them, and opens one', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await echo(`hello ${i}`, { queue: 'mail' }));
    await page.goto(`${base}/#/tasks`);
    await page.locator('tbody tr').first().waitFor();
    // Newest first: the last Echo submitted tops the list.
    await page.locator('tbody tr').first().locator('a.id', { hasText: ids[4]! }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(shots, 'dashboard-tasks.png') });

    await page.getByRole('textbox', { name: 'Queue' }).fill('mail');
    await page.getByRole('textbox', { name: 'Queue' }).press('Enter');
    await page.waitForFunction(() => location.hash === '#/tasks?queue=mail');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tbody tr')];
      return rows.length === 5 && rows.every((r) => r.children[2]?.textContent === 'mail');
    }, undefined, { timeout: 10_000 });

    await page.goto(`${base}/#/tasks?state=cancelled`);
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tbody tr')];
      return rows.length === 1 && rows[0]!.getAttribute('data-state') === 'cancelled';
    }, undefined, { timeout: 10_000 });

    await page.goto(`${base}/#/tasks?queue=mail`);
    await page.locator('a.id', { hasText: ids[2]! }).click();
    await page.waitForFunction((id) => location.hash === `#/tasks/${id}`, ids[2]);
    await stateIs('succeeded');
    await page.locator('pre.json', { hasText: '"text": "hello 2"' }).first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(shots, 'dashboard-task.png'), fullPage: true });
  });

  it('shows queues, rates and workers live on the overview', async () => {
    await page.goto(`${base}/`);
    await page.locator('table.queues th[scope="row"]', { hasText: 'mail' }).waitFor({ timeout: 10_000 });
    await page.locator('td[data-state="succeeded"]').first().waitFor();
    await page.getByText('1 connected').waitFor({ timeout: 10_000 });
    await page.locator('.chart svg').waitFor({ timeout: 10_000 });
    // Updated without a reload: a task submitted now shows in the counts.
    const before = await page.locator('tr:has(th a:text-is("mail")) td[data-state="succeeded"]').innerText();
    await echo('one more', { queue: 'mail' });
    await page.waitForFunction(
      (was) => document.querySelector('tr:has(th a[href="#/tasks?queue=mail"]) td[data-state="succeeded"]')?.textContent !== was,
      before,
      { timeout: 10_000 },
    );
    // Nothing waits in mail: a dash, not an age.
    expect(await page.locator('tr:has(th a:text-is("mail")) td[data-oldest]').innerText()).toBe('—');
    // Both lines drawn, submitted dashed over finished so that equal rates still show two.
    const dashes = await page.evaluate(() =>
      [...document.querySelectorAll('.chart polyline')].map((line) => [line.getAttribute('class'), getComputedStyle(line as never).strokeDasharray]),
    );
    expect(dashes).toEqual([
      ['finished', 'none'],
      ['submitted', expect.stringMatching(/^\d/)],
    ]);
    await page.screenshot({ path: join(shots, 'dashboard-overview.png'), fullPage: true });
  });

  it('pauses a queue from the overview (asking first): its new task stays queued; resumed, it runs', async () => {
    const first = await echo('before the pause', { queue: 'reports' });
    await page.goto(`${base}/#/tasks/${first}`);
    await stateIs('succeeded');
    await page.goto(`${base}/`);
    const row = page.locator('tr:has(th a:text-is("reports"))');
    await row.getByRole('button', { name: 'Pause queue reports' }).click();
    // Nothing paused yet: the button asks first, and "Keep running" backs out.
    await row.getByText('Pause reports? Running tasks finish; nothing new starts.').waitFor();
    await row.getByRole('button', { name: 'Keep running' }).click();
    await row.getByRole('button', { name: 'Pause queue reports' }).click();
    await row.getByRole('button', { name: 'Pause queue', exact: true }).click();
    await row.locator('.state.paused').waitFor({ timeout: 10_000 });
    await row.getByRole('button', { name: 'Resume queue reports' }).waitFor();

    const held = await echo('during the pause', { queue: 'reports' });
    // The worker still runs other queues' tasks: one submitted after the held task ends…
    const other = await echo('beside the pause', { queue: 'mail' });
    await page.goto(`${base}/#/tasks/${other}`);
    await stateIs('succeeded');
    // …while the paused queue's task is still waiting, and the overview counts it as queued.
    await page.goto(`${base}/#/tasks/${held}`);
    await stateIs('queued');
    await page.goto(`${base}/`);
    await page.waitForFunction(() => document.querySelector('tr:has(th a[href="#/tasks?queue=reports"]) td[data-state="queued"]')?.textContent === '1', undefined, {
      timeout: 10_000,
    });
    await page.screenshot({ path: join(shots, 'dashboard-paused.png'), fullPage: true });

    await row.getByRole('button', { name: 'Resume queue reports' }).click();
    await row.getByRole('button', { name: 'Pause queue reports' }).waitFor({ timeout: 10_000 });
    expect(await row.locator('.state.paused').count()).toBe(0);
    await page.goto(`${base}/#/tasks/${held}`);
    await stateIs('succeeded');
  });

  it('retries the failed tasks that the list filters match, after a dry run says how many', async () => {
    // Fail the first attempt for good (FAILED_PRECONDITION, not retryable), succeed on the next.
    const batch = [await fail(1, { queue: 'batch' }), await fail(1, { queue: 'batch' }), await fail(1, { queue: 'batch' })];
    const elsewhere = await fail(1, { queue: 'elsewhere' });
    await settled([...batch, elsewhere], 'TASK_STATE_FAILED');

    await page.goto(`${base}/#/tasks?queue=batch&state=failed`);
    await page.waitForFunction(() => [...document.querySelectorAll('tbody tr[data-state="failed"]')].length === 3, undefined, { timeout: 10_000 });
    // Succeeded is not something to retry or cancel: no bulk button for it.
    await page.getByRole('button', { name: 'Cancel all matching…' }).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Retry all matching…' }).click();
    await page.getByTestId('dry-run').getByText('3 tasks would be retried.').waitFor({ timeout: 10_000 });
    // The dry run changed nothing.
    expect((await Promise.all(batch.map(getTask))).map((t) => t.state)).toEqual(Array(3).fill('TASK_STATE_FAILED'));
    await page.screenshot({ path: join(shots, 'dashboard-bulk-retry.png') });
    await page.getByRole('button', { name: 'Retry 3 tasks' }).click();
    await page.getByTestId('bulk-done').getByText('Retried 3 tasks. No more match.').waitFor({ timeout: 10_000 });
    // Retried, they run again and succeed on their second attempt; the other queue's stays failed.
    await settled(batch, 'TASK_STATE_SUCCEEDED');
    expect((await Promise.all(batch.map(getTask))).map((t) => t.attempt)).toEqual([2, 2, 2]);
    expect((await getTask(elsewhere)).state).toBe('TASK_STATE_FAILED');
    await page.getByText('No tasks match these filters.').waitFor({ timeout: 10_000 });
  });

  it('filters by label, error code and creation time, oldest first, all kept in the URL', async () => {
    const acme = [await echo('a1', { queue: 'labelled', labels: { tenant: 'acme' } }), await echo('a2', { queue: 'labelled', labels: { tenant: 'acme', tier: 'gold' } })];
    await echo('g1', { queue: 'labelled', labels: { tenant: 'globex' } });
    const missing = await fail(0, { queue: 'labelled' }, 5); // NOT_FOUND, beside the earlier tests' FAILED_PRECONDITION
    await settled([missing], 'TASK_STATE_FAILED');
    const ids = () => page.evaluate(() => [...document.querySelectorAll('tbody tr a.id')].map((a) => a.textContent));

    await page.goto(`${base}/#/tasks?queue=labelled`);
    await page.getByRole('textbox', { name: 'Label' }).fill('tenant');
    await page.getByRole('textbox', { name: 'Label' }).press('Enter');
    await page.getByText('Label: "tenant" is not key=value').waitFor();
    expect(await page.evaluate(() => location.hash)).toBe('#/tasks?queue=labelled');
    await page.getByRole('textbox', { name: 'Label' }).fill('tenant=acme');
    await page.getByRole('textbox', { name: 'Label' }).press('Enter');
    await page.waitForFunction(() => location.hash === '#/tasks?queue=labelled&label=tenant%3Dacme');
    await page.waitForFunction((want) => [...document.querySelectorAll('tbody tr a.id')].map((a) => a.textContent).join() === want, [...acme].reverse().join(), {
      timeout: 10_000,
    });
    await page.getByRole('combobox', { name: 'Order' }).selectOption('oldest');
    await page.waitForFunction(() => location.hash === '#/tasks?queue=labelled&label=tenant%3Dacme&order=oldest');
    await page.waitForFunction((want) => [...document.querySelectorAll('tbody tr a.id')].map((a) => a.textContent).join() === want, acme.join(), { timeout: 10_000 });
    // Kept in the URL: a reload shows the same list and the same form.
    await page.reload();
    await page.waitForFunction((want) => [...document.querySelectorAll('tbody tr a.id')].map((a) => a.textContent).join() === want, acme.join(), { timeout: 10_000 });
    expect(await page.getByRole('textbox', { name: 'Label' }).inputValue()).toBe('tenant=acme');

    await page.goto(`${base}/#/tasks`);
    await page.getByRole('combobox', { name: 'Error code' }).selectOption('5');
    await page.waitForFunction(() => location.hash === '#/tasks?error=5');
    await page.waitForFunction((id) => [...document.querySelectorAll('tbody tr a.id')].map((a) => a.textContent).join() === id, missing, { timeout: 10_000 });
    expect(await ids()).toEqual([missing]);

    // Created in the last 15 minutes: every task here is; the request says from when.
    const sent = page.waitForRequest((r) => r.url().endsWith('/taskwire.v1.TaskService/ListTasks'));
    await page.getByRole('combobox', { name: 'Created' }).selectOption('15m');
    await page.waitForFunction(() => location.hash === '#/tasks?since=15m&error=5');
    const request = fromBinary(ListTasksRequestSchema, (await sent).postDataBuffer()!);
    expect(request.errorCode).toBe(5);
    expect(request.order).toBe(TaskOrder.NEWEST_FIRST);
    expect(Math.abs(Date.now() - 15 * 60_000 - timestampMs(request.createdSince!))).toBeLessThan(10_000);
    await page.waitForFunction((id) => [...document.querySelectorAll('tbody tr a.id')].map((a) => a.textContent).join() === id, missing, { timeout: 10_000 });
    await page.screenshot({ path: join(shots, 'dashboard-tasks-filtered.png') });
  });

  it('lists the workers', async () => {
    await page.goto(`${base}/#/workers`);
    await page.locator('td', { hasText: 'browser-worker' }).waitFor({ timeout: 10_000 });
    await page.locator('code.type', { hasText: 'demo.v1.DemoService/Sleep' }).first().waitFor();
    await page.screenshot({ path: join(shots, 'dashboard-workers.png') });
  });

  it('lists schedules with their next and last firing and last task, and pauses and resumes one', async () => {
    await page.goto(`${base}/#/schedules`);
    await page.getByText('No schedules yet — create one with').waitFor({ timeout: 10_000 });
    const create = async (body: Record<string, unknown>) => {
      const response = await fetch(`${base}/taskwire.v1.ScheduleService/CreateSchedule`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(response.status, await response.clone().text()).toBe(200);
    };
    const input = { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text: 'tick' };
    await create({ id: 'every-second', spec: { type: '/demo.v1.DemoService/Echo', input, interval: '1s' } });
    await create({ id: 'weekday-report', paused: true, spec: { type: '/demo.v1.DemoService/Echo', input, cron: { expression: '0 9 * * MON-FRI', timeZone: 'Europe/Berlin' } } });

    const ticking = page.locator('tr[data-schedule="every-second"]');
    const report = page.locator('tr[data-schedule="weekday-report"]');
    await report.getByText('0 9 * * MON-FRI (Europe/Berlin)').waitFor({ timeout: 10_000 });
    expect(await report.locator('td[data-next]').innerText()).toBe('paused');
    await ticking.getByText('every 1 s', { exact: true }).waitFor();
    // It fires: a last firing, a count and a link to the task it submitted, which runs.
    await ticking.locator('td a.id').waitFor({ timeout: 15_000 });
    await page.waitForFunction(() => Number(document.querySelector('tr[data-schedule="every-second"] td[data-fired] [data-count]')?.textContent) >= 1, undefined, { timeout: 10_000 });
    expect(await ticking.locator('td[data-last]').innerText()).toMatch(/ ago$/);
    await page.screenshot({ path: join(shots, 'dashboard-schedules.png') });
    const lastTask = await ticking.locator('td a.id').getAttribute('title');
    await ticking.locator('td a.id').click();
    await page.waitForFunction((id) => location.hash === `#/tasks/${id}`, lastTask);
    await stateIs('succeeded');

    await page.goto(`${base}/#/schedules`);
    await ticking.getByRole('button', { name: 'Pause schedule every-second' }).click();
    await ticking.locator('.state.paused').waitFor({ timeout: 10_000 });
    expect(await ticking.locator('td[data-next]').innerText()).toBe('paused');
    await ticking.getByRole('button', { name: 'Resume schedule every-second' }).click();
    await ticking.locator('.state.paused').waitFor({ state: 'detached', timeout: 10_000 });
    await ticking.locator('td[data-next] time').waitFor();
    expect(await ticking.locator('td[data-next]').innerText()).toMatch(/^(now|in \d s)$/);
    // Paused again so that the rest of the run is not fed a task a second.
    await ticking.getByRole('button', { name: 'Pause schedule every-second' }).click();
    await ticking.locator('.state.paused').waitFor({ timeout: 10_000 });
  });

  it('works in a narrow window and from the keyboard', async () => {
    await page.setViewportSize({ width: 380, height: 740 });
    await page.goto(`${base}/`);
    await page.locator('table.queues').waitFor({ timeout: 10_000 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.keyboard.press('Tab'); // the brand link
    await page.keyboard.press('Tab'); // Overview
    await page.keyboard.press('Tab'); // Tasks
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#/tasks');
    // Every row whole, its type included: nothing cut off or scrolled sideways.
    await page.locator('tbody tr td.task-type').first().waitFor({ timeout: 10_000 });
    const cut = await page.evaluate(() => {
      const list = document.querySelector('.scroll') as unknown as { scrollWidth: number; clientWidth: number; getBoundingClientRect(): { right: number } };
      const right = list.getBoundingClientRect().right;
      const cells = [...document.querySelectorAll('tbody td')] as unknown as Array<{ getBoundingClientRect(): { right: number } }>;
      return { overflow: list.scrollWidth - list.clientWidth, beyond: cells.filter((cell) => cell.getBoundingClientRect().right > right + 0.5).length };
    });
    expect(cut).toEqual({ overflow: 0, beyond: 0 });
    await page.screenshot({ path: join(shots, 'dashboard-narrow.png') });
    await page.setViewportSize({ width: 1200, height: 820 });
  });

  it('loads nothing from anywhere but the server', () => {
    expect(outside).toEqual([]);
  });
});
