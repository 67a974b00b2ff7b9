import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status } from 'nice-grpc';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EchoRequest, SleepRequest } from '../../gen/ts/demo/v1/demo.js';
import type { Task } from '../../gen/ts/taskwire/v1/task.js';
import { createClient, pack, TaskwireError, type ScheduleSpecInput, type TaskwireClient } from '../../src/client/index.js';
import { DemoServiceDefinition } from '../../src/demo/handlers.js';
import { createTaskwireServer, type TaskwireServer } from '../../src/server/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';
const SLEEP = '/demo.v1.DemoService/Sleep';
const echo = (text = 'tick') => pack(EchoRequest, { text, payload: Buffer.alloc(0) });
const everySecond = (overrides: Partial<ScheduleSpecInput> = {}): ScheduleSpecInput => ({ type: ECHO, input: echo(), cron: '* * * * * *', ...overrides });

let stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.reverse()) await stop();
  stops = [];
});

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskwireError);
  return { code: (error as TaskwireError).code as number, details: (error as TaskwireError).message };
}

/** Every task of a schedule, with the due time its idempotency key names. */
async function firedTasks(client: TaskwireClient, id: string): Promise<Array<{ due: number; task: Task }>> {
  const out: Array<{ due: number; task: Task }> = [];
  let pageToken = '';
  do {
    const page = await client.list({ pageSize: 1000, pageToken });
    for (const task of page.tasks) {
      const match = /^taskwire-schedule\/(.+)\/(\d+)$/.exec(task.options?.idempotencyKey ?? '');
      if (match?.[1] === id) out.push({ due: Number(match[2]), task });
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  return out.sort((a, b) => a.due - b.due);
}

describe('schedules over gRPC (SQLite)', () => {
  it('refuse bad specs with one error naming the field, and lose nothing', async () => {
    const stack = await startStack();
    stops.push(stack.stop);
    const client = stack.client();
    const s = client.schedules;
    const cases: Array<[Promise<unknown>, Status, RegExp]> = [
      [s.create('a', everySecond({ cron: '61 * * * *' })), Status.INVALID_ARGUMENT, /spec\.cron\.expression "61 \* \* \* \*" is not valid: .*minute/],
      [s.create('a', everySecond({ timeZone: 'Mars/Olympus' })), Status.INVALID_ARGUMENT, /spec\.cron\.time_zone "Mars\/Olympus" is not an IANA time zone/],
      [s.create('a', everySecond({ cron: undefined })), Status.INVALID_ARGUMENT, /exactly one of cron .* or interval/],
      [s.create('a', everySecond({ cron: undefined, intervalMs: 10 })), Status.INVALID_ARGUMENT, /spec\.interval must be between 1s and 366 days/],
      [s.create('a', everySecond({ type: '/no.Such/Type' })), Status.INVALID_ARGUMENT, /spec\.unknown task type "\/no\.Such\/Type"/],
      [s.create('a', everySecond({ input: pack(SleepRequest, { durationMs: 1, steps: 0 }) })), Status.INVALID_ARGUMENT, /spec\.input has type/],
      [s.create('a', everySecond({ options: { queue: 'bad queue' } })), Status.INVALID_ARGUMENT, /spec\.options\.queue/],
      [s.create('bad id!', everySecond()), Status.INVALID_ARGUMENT, /^id "bad id!" must be/],
      [s.create('a', everySecond({ missedLimit: 5000 })), Status.INVALID_ARGUMENT, /spec\.missed_limit must be in 1\.\.1000/],
      [s.create('a', everySecond({ cron: '0 0 30 2 *' })), Status.INVALID_ARGUMENT, /never fires|not valid/],
      [s.get('nope'), Status.NOT_FOUND, /no schedule with id "nope"/],
      [s.pause(''), Status.INVALID_ARGUMENT, /id is required/],
      [s.list({ pageToken: '%%%' }), Status.INVALID_ARGUMENT, /page_token/],
    ];
    for (const [promise, code, message] of cases) {
      const error = await refusal(promise);
      expect({ code: error.code, details: error.details }).toEqual({ code, details: expect.stringMatching(message) });
    }
    expect((await s.list()).schedules).toEqual([]);
    await s.create('a', everySecond({ cron: '0 9 * * MON-FRI', timeZone: 'Europe/Berlin' }));
    expect((await refusal(s.create('a', everySecond()))).code).toBe(Status.ALREADY_EXISTS);
    expect((await s.list()).schedules.map((x) => x.id)).toEqual(['a']);
  });

  it('fire every second while a worker runs the tasks; pause stops, resume goes on, delete ends it', async () => {
    const stack = await startStack();
    stops.push(stack.stop);
    await stack.worker();
    const client = stack.client();
    const created = await client.schedules.create('tick', everySecond({ overlap: 'allow' }));
    expect(created.state?.nextFireTime?.getTime()).toBeGreaterThan(Date.now() - 1000);
    const fired = await waitFor(async () => {
      const s = await client.schedules.get('tick');
      return s.state!.fired >= 2 && s;
    }, { timeoutMs: 10_000, what: 'two firings' });
    const tasks = await firedTasks(client, 'tick');
    expect(tasks.length).toBe(fired.state!.fired);
    for (const { due } of tasks) expect(due % 1000).toBe(0);
    await waitFor(async () => (await client.result(fired.state!.lastTaskId)).state === 4, { what: 'the last task to succeed' });

    const paused = await client.schedules.pause('tick');
    expect(paused.paused).toBe(true);
    expect(paused.state?.nextFireTime).toBeUndefined();
    const resumed = await client.schedules.resume('tick');
    expect(resumed.state!.nextFireTime!.getTime()).toBeGreaterThan(Date.now() - 1000);
    await waitFor(async () => (await client.schedules.get('tick')).state!.fired > paused.state!.fired, { what: 'a firing after resume' });
    await client.schedules.delete('tick');
    expect((await refusal(client.schedules.get('tick'))).code).toBe(Status.NOT_FOUND);
  });

  it("fire tasks that the server's retention cleans like submitted ones", async () => {
    const stack = await startStack({ retention: { succeededMs: 200, failedMs: 0, cancelledMs: 0 } });
    stops.push(stack.stop);
    await stack.worker();
    const client = stack.client();
    await client.schedules.create('kept-briefly', everySecond({ overlap: 'allow' }));
    const first = await waitFor(async () => {
      const s = await client.schedules.get('kept-briefly');
      return s.state!.fired >= 1 && s.state!.lastTaskId;
    }, { timeoutMs: 10_000, what: 'a firing' });
    // Fired tasks carry the server's retention: the cleaner deletes the first after it succeeds.
    await waitFor(async () => client.get(first).then(() => false, (e: unknown) => e instanceof TaskwireError && e.code === Status.NOT_FOUND), {
      timeoutMs: 10_000,
      what: 'the fired task to be cleaned after its retention',
    });
    await client.schedules.delete('kept-briefly');
  });

  it('are served on the HTTP listener (Connect JSON)', async () => {
    const stack = await startStack({ httpListen: '127.0.0.1:0' });
    stops.push(stack.stop);
    const post = (method: string, body: unknown) =>
      fetch(`http://127.0.0.1:${stack.server.httpPort}/taskwire.v1.ScheduleService/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const created = await post('CreateSchedule', {
      id: 'from-http',
      spec: { type: ECHO, input: { '@type': 'type.googleapis.com/demo.v1.EchoRequest', text: 'hi' }, cron: { expression: '0 9 * * MON-FRI', timeZone: 'Europe/Berlin' } },
    });
    expect(created.status).toBe(200);
    const body = (await created.json()) as { schedule: { id: string; state: { nextFireTime: string } } };
    expect(body.schedule.id).toBe('from-http');
    expect(new Date(body.schedule.state.nextFireTime).getUTCDay()).not.toBe(0);
    const bad = await post('CreateSchedule', { id: 'x', spec: { type: ECHO, input: { '@type': 'type.googleapis.com/demo.v1.EchoRequest' }, cron: { expression: 'nope' } } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/spec\.cron\.expression "nope" is not valid/);
    expect((await stack.client().schedules.list()).schedules.map((x) => x.id)).toEqual(['from-http']);
  });

  it('skip a due time while the last task still runs (overlap skip): never two at once', async () => {
    const stack = await startStack();
    stops.push(stack.stop);
    await stack.worker({ concurrency: 4 });
    const client = stack.client();
    await client.schedules.create('slow', { type: SLEEP, input: pack(SleepRequest, { durationMs: 2_500, steps: 0 }), cron: '* * * * * *' });
    const state = await waitFor(async () => {
      const s = (await client.schedules.get('slow')).state!;
      return s.fired >= 2 && s.overlapSkipped >= 2 && s;
    }, { timeoutMs: 15_000, what: 'two firings and skipped overlaps' });
    const tasks = (await firedTasks(client, 'slow')).map((t) => t.task);
    expect(tasks.length).toBeGreaterThanOrEqual(state.fired);
    const ran = tasks.filter((t) => t.startTime !== undefined && t.finishTime !== undefined);
    for (let i = 1; i < ran.length; i++) expect(ran[i]!.startTime!.getTime()).toBeGreaterThanOrEqual(ran[i - 1]!.finishTime!.getTime());
  });
});

describe('missed due times after a restart (SQLite)', () => {
  it('follow each schedule\'s policy: skip, run once, run the last N', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskwire-missed-'));
    stops.push(async () => rmSync(dir, { recursive: true, force: true }));
    const open = async () => {
      const server: TaskwireServer = createTaskwireServer({ dbPath: join(dir, 'tasks.db'), logger: pino({ level: 'silent' }) });
      server.addTaskService(DemoServiceDefinition);
      const port = await server.listen('127.0.0.1:0');
      const client = createClient({ server: `127.0.0.1:${port}` });
      return { server, client, stop: async () => (client.close(), await server.shutdown()) };
    };
    const first = await open();
    const grace = 500;
    for (const [id, missed] of [['skip', 'skip'], ['once', 'once'], ['all', 'all']] as const) {
      await first.client.schedules.create(id, everySecond({ missed, missedLimit: 2, missedGraceMs: grace, overlap: 'allow' }));
    }
    await waitFor(async () => (await first.client.schedules.get('skip')).state!.fired >= 1, { what: 'a firing before the outage' });
    await first.stop();
    // The outage itself: due times pass while no server runs.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    const second = await open();
    stops.push(second.stop);
    const restartedAt = Date.now();
    for (const [id, expectedFromMissed, words] of [
      ['skip', 0, /skipped$/],
      ['once', 1, /ran once$/],
      ['all', 2, /ran the last 2, skipped the rest$/],
    ] as const) {
      const state = await waitFor(async () => {
        const s = (await second.client.schedules.get(id)).state!;
        return s.lastFireTime !== undefined && s.lastFireTime.getTime() >= restartedAt && s;
      }, { what: `${id} firing after the restart` });
      expect(state.lastMissed).toMatch(words);
      const dues = (await firedTasks(second.client, id)).map((t) => t.due);
      // Due times are whole seconds; the outage left one gap, as long as what the policy skipped.
      const gaps = dues.slice(1).map((due, i) => (due - dues[i]!) / 1000 - 1).filter((missing) => missing > 0);
      const missed = Number(/^(\d+) missed/.exec(state.lastMissed)![1]);
      expect(missed).toBeGreaterThanOrEqual(3);
      expect(state.missedSkipped).toBe(missed - expectedFromMissed);
      expect(gaps).toEqual([state.missedSkipped]);
      expect(new Set(dues).size).toBe(dues.length);
      expect(state.fired).toBe(dues.length);
    }
  });
});
