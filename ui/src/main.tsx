import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { token } from './api.js';
import { Overview } from './overview.js';
import { Schedules } from './schedules.js';
import { TaskDetail } from './task-detail.js';
import { Tasks } from './tasks.js';
import { Workers } from './workers.js';

/** The hash route: #/, #/tasks?state=running, #/tasks/<id>, #/workers, #/schedules. */
function useRoute(): { path: string; query: URLSearchParams } {
  const read = () => {
    const [path, query] = (location.hash.slice(1) || '/').split('?');
    return { path: path || '/', query: new URLSearchParams(query ?? '') };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}

function TokenForm({ onChange }: { onChange: () => void }) {
  const [value, setValue] = useState('');
  const has = token.get() !== '';
  return (
    <form
      class="token"
      onSubmit={(event) => {
        event.preventDefault();
        token.set(value);
        setValue('');
        onChange();
      }}
    >
      <label>
        <span class="sr">API token</span>
        <input type="password" autocomplete="off" placeholder={has ? 'token set for this session' : 'API token, if needed'} value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      </label>
      <button type="submit">Use token</button>
      {has && (
        <button
          type="button"
          onClick={() => {
            token.set('');
            onChange();
          }}
        >
          Forget
        </button>
      )}
    </form>
  );
}

function App() {
  const { path, query } = useRoute();
  const [generation, setGeneration] = useState(0);
  const page = path.startsWith('/tasks/') ? 'tasks' : path.slice(1) || 'overview';
  const link = (href: string, name: string, label: string) => (
    <a href={href} aria-current={page === name ? 'page' : undefined}>
      {label}
    </a>
  );
  let view;
  if (path === '/') view = <Overview />;
  else if (path === '/tasks') view = <Tasks query={query} />;
  else if (path.startsWith('/tasks/')) view = <TaskDetail id={decodeURIComponent(path.slice('/tasks/'.length))} />;
  else if (path === '/workers') view = <Workers />;
  else if (path === '/schedules') view = <Schedules />;
  else view = <p class="empty">No page here. <a href="#/">Go to the overview</a>.</p>;
  return (
    <>
      <header>
        <a class="brand" href="#/">taskwire</a>
        <nav aria-label="pages">
          {link('#/', 'overview', 'Overview')}
          {link('#/tasks', 'tasks', 'Tasks')}
          {link('#/workers', 'workers', 'Workers')}
          {link('#/schedules', 'schedules', 'Schedules')}
        </nav>
        <TokenForm onChange={() => setGeneration((g) => g + 1)} />
      </header>
      <main key={`${generation}`}>{view}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
