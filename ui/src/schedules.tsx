import type { Duration, Timestamp } from '@bufbuild/protobuf/wkt';
import { useState } from 'preact/hooks';
import type { Schedule } from '../gen/taskwire/v1/schedule_service_pb.js';
import { useAdmin } from './access.js';
import { scheduleApi } from './api.js';
import { ago, Ago, dateOf, duration, Empty, useNow } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

const PAGE = 100;

const seconds = (d: Duration | undefined) => (d === undefined ? 0 : Number(d.seconds) * 1000 + d.nanos / 1e6);

/** "*\/5 * * * * (Europe/Berlin)" or "every 30 s". */
function timing(s: Schedule): string {
  const t = s.spec?.timing;
  if (t?.case === 'cron') return `${t.value.expression} (${t.value.timeZone || 'UTC'})`;
  if (t?.case === 'interval') {
    const ms = seconds(t.value);
    return `every ${ms % 1000 === 0 && ms < 60_000 ? `${ms / 1000} s` : duration(ms)}`;
  }
  return '—';
}

/** "in 4 min", or "now" once the due time has come (the firing lands within a poll). */
function Next({ at }: { at: Timestamp | undefined }) {
  const now = useNow();
  const date = dateOf(at);
  if (date === undefined) return <span class="muted">—</span>;
  const ms = date.getTime() - now;
  return (
    <time dateTime={date.toISOString()} title={date.toLocaleString()}>
      {ms <= 500 ? 'now' : `in ${ago(ms)}`}
    </time>
  );
}

/** Pause or resume one schedule; the server's refusal shown beside it. */
function ScheduleControl({ schedule, onChange }: { schedule: Schedule; onChange: () => void }) {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const act = async () => {
    setBusy(true);
    setError(undefined);
    try {
      if (schedule.paused) await scheduleApi.resumeSchedule({ id: schedule.id });
      else await scheduleApi.pauseSchedule({ id: schedule.id });
      onChange();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const word = schedule.paused ? 'Resume' : 'Pause';
  return (
    <div class="queue-control">
      <button type="button" disabled={busy} aria-label={`${word} schedule ${schedule.id}`} onClick={() => void act()}>
        {word}
      </button>
      {error !== undefined && <Problem error={error} />}
    </div>
  );
}

/** Every schedule with its timing, next and last firing and last task; paged by the server. */
export function Schedules() {
  const admin = useAdmin();
  const [pages, setPages] = useState<string[]>(['']);
  const pageToken = pages[pages.length - 1]!;
  const list = usePoll((signal) => scheduleApi.listSchedules({ pageSize: PAGE, pageToken }, { signal }), 2000, [pageToken]);
  const schedules = list.value?.schedules ?? [];
  return (
    <>
      <h1>Schedules</h1>
      {list.error !== undefined && <Problem error={list.error} />}
      {list.value !== undefined && schedules.length === 0 && (
        <Empty>
          No schedules yet — create one with <code>taskwire schedule create heartbeat demo.v1.DemoService.Echo --every 30s</code>.
        </Empty>
      )}
      {schedules.length > 0 && (
        <div class="scroll">
          <table class="schedules">
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">Type</th>
                <th scope="col">When</th>
                <th scope="col">Next firing</th>
                <th scope="col">Last firing</th>
                <th scope="col">Last task</th>
                <th scope="col" class="num" title="Tasks submitted / missed due times skipped / skipped as the last task still ran">
                  Fired
                </th>
                {admin !== false && (
                  <th scope="col">
                    <span class="sr">actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {schedules.map((s) => (
                <tr key={s.id} data-schedule={s.id}>
                  <th scope="row" class="wrap">
                    {s.id}
                    {s.paused && (
                      <span class="state paused" title="paused: fires nothing until resumed; due times passed meanwhile are not fired">
                        paused
                      </span>
                    )}
                  </th>
                  <td>
                    <code>{s.spec?.type}</code>
                  </td>
                  <td class="wrap">
                    <code>{timing(s)}</code>
                  </td>
                  <td data-next>{s.paused ? <span class="muted">paused</span> : <Next at={s.state?.nextFireTime} />}</td>
                  <td data-last>
                    <Ago at={s.state?.lastFireTime} />
                  </td>
                  <td>
                    {s.state?.lastTaskId ? (
                      <a class="id" href={`#/tasks/${encodeURIComponent(s.state.lastTaskId)}`} title={s.state.lastTaskId}>
                        …{s.state.lastTaskId.slice(-12)}
                      </a>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td class="num" data-fired title={s.state?.lastMissed || undefined}>
                    <span data-count>{(s.state?.fired ?? 0n).toLocaleString()}</span>
                    {(s.state?.missedSkipped ?? 0n) + (s.state?.overlapSkipped ?? 0n) > 0n && (
                      <span class="muted"> ({((s.state?.missedSkipped ?? 0n) + (s.state?.overlapSkipped ?? 0n)).toLocaleString()} skipped)</span>
                    )}
                  </td>
                  {admin !== false && (
                    <td>
                      <ScheduleControl schedule={s} onChange={list.reload} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {(pages.length > 1 || list.value?.nextPageToken) && (
        <nav class="pager" aria-label="pages of schedules">
          <button type="button" disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
            ← Previous
          </button>
          <button type="button" disabled={!list.value?.nextPageToken} onClick={() => setPages([...pages, list.value!.nextPageToken])}>
            Next →
          </button>
        </nav>
      )}
    </>
  );
}
