import { api } from './api.js';
import { Ago, Empty } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';

/** Every connected worker: types, slots in use, version, connect time, last heartbeat. */
export function Workers() {
  const workers = usePoll((signal) => api.listWorkers({}, { signal }).then((r) => r.workers), 2000, []);
  const list = workers.value ?? [];
  return (
    <>
      <h1>Workers</h1>
      {workers.error !== undefined && <Problem error={workers.error} />}
      {workers.value !== undefined && list.length === 0 && (
        <Empty>
          No workers connected — start one with <code>taskwire worker --demo</code>.
        </Empty>
      )}
      {list.length > 0 && (
        <div class="scroll">
          <table class="workers">
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Task types</th>
                <th scope="col" class="num">Running / slots</th>
                <th scope="col">Version</th>
                <th scope="col">Peer</th>
                <th scope="col">Server</th>
                <th scope="col">Connected</th>
                <th scope="col">Last heartbeat</th>
              </tr>
            </thead>
            <tbody>
              {list.map((w) => (
                <tr key={w.sessionId}>
                  <td>{w.workerId}</td>
                  <td class="types">
                    {w.taskTypes.map((t) => (
                      <code class="type">{t}</code>
                    ))}
                  </td>
                  <td class="num">
                    {w.running} / {w.slots}
                  </td>
                  <td>{w.version || '—'}</td>
                  <td>{w.peer}</td>
                  <td>{w.replica}</td>
                  <td>
                    <Ago at={w.connectTime} />
                  </td>
                  <td>
                    <Ago at={w.lastSeenTime} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
