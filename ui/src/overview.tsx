import type { Duration } from '@bufbuild/protobuf/wkt';
import { useState } from 'preact/hooks';
import { useAdmin } from './access.js';
import { api } from './api.js';
import { RateChart } from './chart.js';
import { ago, Empty, STATES, stateName } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';
import { QueueControl } from './queue-control.js';
import { record, type Rate } from './rates.js';

const COUNTS = ['scheduled', 'queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;

const durationMs = (d: Duration | undefined) => (d === undefined ? 0 : Number(d.seconds) * 1000 + d.nanos / 1e6);

/** The age of a queue's oldest waiting task; a dash when nothing waits. */
const OldestWaiting = ({ queued, ms }: { queued: bigint; ms: number }) =>
  queued === 0n ? <span class="muted">—</span> : <span title={`${(ms / 1000).toFixed(1)} s`}>{ago(ms)}</span>;

/** Queues with their counts, oldest waiting age and pause control, the rate chart and the workers' slots, polled every second. */
export function Overview() {
  const [rates, setRates] = useState<Rate[]>([]);
  const admin = useAdmin();
  const stats = usePoll(
    async (signal) => {
      const response = await api.getQueueStats({}, { signal });
      setRates(record(response.queues));
      return response.queues;
    },
    1000,
    [],
  );
  const workers = usePoll((signal) => api.listWorkers({}, { signal }).then((r) => r.workers), 2000, []);
  const queues = stats.value ?? [];
  const slots = (workers.value ?? []).reduce((n, w) => n + w.slots, 0);
  const busy = (workers.value ?? []).reduce((n, w) => n + w.running, 0);
  return (
    <>
      <h1>Overview</h1>
      {stats.error !== undefined && <Problem error={stats.error} />}
      <section aria-labelledby="queues">
        <h2 id="queues">Queues</h2>
        {stats.value !== undefined && queues.length === 0 && (
          <Empty>
            No tasks yet — submit one with <code>taskwire submit demo.v1.DemoService/Echo '{'{'}"text":"hi"{'}'}'</code>.
          </Empty>
        )}
        {queues.length > 0 && (
          <div class="scroll">
            <table class="queues">
              <thead>
                <tr>
                  <th scope="col">Queue</th>
                  {STATES.map((s) => (
                    <th scope="col" class="num">
                      <span class={`state state-${stateName(s)}`}>{stateName(s)}</span>
                    </th>
                  ))}
                  <th scope="col" class="num" title="How long the oldest queued task has waited since it became due">
                    oldest waiting
                  </th>
                  {admin !== false && (
                    <th scope="col">
                      <span class="sr">actions</span>
                    </th>
                  )}
                </tr>
              </thead>
              <tbody>
                {queues.map((q) => (
                  <tr key={q.queue}>
                    <th scope="row">
                      <a href={`#/tasks?queue=${encodeURIComponent(q.queue)}`}>{q.queue}</a>
                      {q.paused && (
                        <span class="state paused" title="paused: takes submits, dispatches nothing (taskwire resume)">
                          paused
                        </span>
                      )}
                    </th>
                    {COUNTS.map((c, i) => (
                      <td class="num" data-state={c}>
                        <a href={`#/tasks?queue=${encodeURIComponent(q.queue)}&state=${stateName(STATES[i]!)}`}>{q[c].toLocaleString()}</a>
                      </td>
                    ))}
                    <td class="num" data-oldest>
                      <OldestWaiting queued={q.queued} ms={durationMs(q.oldestQueuedAge)} />
                    </td>
                    {admin !== false && (
                      <td>
                        <QueueControl queue={q.queue} paused={q.paused} onChange={stats.reload} />
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section aria-labelledby="rates">
        <h2 id="rates">Submitted and finished per second</h2>
        <RateChart rates={rates} />
      </section>
      <section aria-labelledby="slots">
        <h2 id="slots">Workers</h2>
        {workers.error !== undefined && stats.error === undefined && <Problem error={workers.error} />}
        {workers.value !== undefined &&
          (workers.value.length === 0 ? (
            <Empty>
              No workers connected — start one with <code>taskwire worker --demo</code>.
            </Empty>
          ) : (
            <p>
              <a href="#/workers">{workers.value.length} connected</a>, {busy} of {slots} slots in use.
              <meter min={0} max={Math.max(1, slots)} value={busy} aria-label="slots in use" />
            </p>
          ))}
      </section>
    </>
  );
}
