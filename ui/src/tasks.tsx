import { useState } from 'preact/hooks';
import { TaskView } from '../gen/taskwire/v1/task_service_pb.js';
import { useAdmin } from './access.js';
import { api } from './api.js';
import { BulkActions } from './bulk.js';
import { filtersFrom, isFiltered, listRequestOf } from './filters.js';
import { Ago, Empty, State, stateName } from './format.js';
import { usePoll } from './poll.js';
import { Problem } from './problem.js';
import { TaskFilterForm } from './task-filters.js';

const PAGE = 50;

/** Newest (or oldest) first, filtered and paged by the server; the filters live in the URL. */
export function Tasks({ query }: { query: URLSearchParams }) {
  const filters = filtersFrom(query);
  const admin = useAdmin();
  // Tokens of the pages before this one, for going back; the current page's token last.
  const [pages, setPages] = useState<string[]>(['']);
  const pageToken = pages[pages.length - 1]!;
  const list = usePoll(
    (signal) => api.listTasks({ ...listRequestOf(filters, Date.now()), pageSize: PAGE, pageToken, view: TaskView.BASIC }, { signal }),
    pageToken === '' ? 2000 : 10_000,
    [query.toString(), pageToken],
  );
  const tasks = list.value?.tasks ?? [];
  const filtered = isFiltered(filters);
  return (
    <>
      <h1>Tasks</h1>
      <TaskFilterForm
        key={query.toString()}
        filters={filters}
        onGo={(next) => {
          setPages(['']);
          location.hash = `#/tasks${next.size > 0 ? `?${next}` : ''}`;
        }}
      />
      {admin !== false && filtered && <BulkActions key={query.toString()} filters={filters} onDone={list.reload} />}
      {list.error !== undefined && <Problem error={list.error} />}
      {list.value !== undefined && tasks.length === 0 && (
        <Empty>
          {filtered ? (
            'No tasks match these filters.'
          ) : (
            <>
              No tasks yet — submit one with <code>taskwire submit demo.v1.DemoService/Echo '{'{'}"text":"hi"{'}'}'</code>.
            </>
          )}
        </Empty>
      )}
      {tasks.length > 0 && (
        <div class="scroll">
          <table class="tasks">
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col">Type</th>
                <th scope="col">Queue</th>
                <th scope="col">State</th>
                <th scope="col" class="num">Attempt</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {tasks.map((t) => (
                <tr key={t.id} data-state={stateName(t.state)}>
                  <td class="task">
                    <a class="id" href={`#/tasks/${encodeURIComponent(t.id)}`}>
                      {t.id}
                    </a>
                  </td>
                  <td class="task-type">{t.type}</td>
                  <td data-label="queue">{t.options?.queue}</td>
                  <td>
                    <State state={t.state} />
                  </td>
                  <td class="num" data-label="attempt">
                    {t.attempt}
                  </td>
                  <td data-label="created">
                    <Ago at={t.createTime} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="pages of tasks">
        <button type="button" disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
          ← {filters.oldestFirst ? 'Older' : 'Newer'}
        </button>
        <button type="button" disabled={!list.value?.nextPageToken} onClick={() => setPages([...pages, list.value!.nextPageToken])}>
          {filters.oldestFirst ? 'Newer' : 'Older'} →
        </button>
      </nav>
    </>
  );
}
