import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { ScheduleService } from '../gen/taskwire/v1/schedule_service_pb.js';
import { TaskService } from '../gen/taskwire/v1/task_service_pb.js';

const KEY = 'taskwire.token';

/** The pasted token: this browser session only (sessionStorage), sent as a Bearer header. */
export const token = {
  get: (): string => sessionStorage.getItem(KEY) ?? '',
  set(value: string): void {
    if (value.trim() === '') sessionStorage.removeItem(KEY);
    else sessionStorage.setItem(KEY, value.trim());
  },
};

const bearer: Interceptor = (next) => (request) => {
  const value = token.get();
  if (value !== '') request.header.set('authorization', `Bearer ${value}`);
  return next(request);
};

// Binary: a task's input and output (google.protobuf.Any) stay bytes, so the browser needs no
// task service's descriptors; taskJson asks the server, which has them, for readable JSON.
const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] });

/** TaskService over Connect on this page's origin, typed from proto/taskwire/v1. */
export const api = createClient(TaskService, transport);

/** ScheduleService (admin) over the same transport. */
export const scheduleApi = createClient(ScheduleService, transport);

/** A task's input and output as the server's registry writes them in JSON (with "@type"). */
export interface TaskPayloads {
  readonly input?: unknown;
  readonly output?: unknown;
}

/** GetTask in Connect JSON: the server decodes the Any payloads with the task type's descriptor. */
export async function taskJson(id: string, signal?: AbortSignal): Promise<TaskPayloads> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token.get() !== '') headers.authorization = `Bearer ${token.get()}`;
  const response = await fetch('/taskwire.v1.TaskService/GetTask', {
    method: 'POST',
    headers,
    body: JSON.stringify({ id, view: 'TASK_VIEW_FULL' }),
    ...(signal === undefined ? {} : { signal }),
  });
  const body = (await response.json()) as { task?: TaskPayloads; message?: string };
  if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`);
  return { input: body.task?.input, output: body.task?.output };
}

/** What an error means to the person looking at the page. */
export function explain(error: unknown): { kind: 'token' | 'role' | 'other'; text: string } {
  const e = ConnectError.from(error);
  if (e.code === Code.Unauthenticated) {
    return {
      kind: 'token',
      text: token.get() === '' ? 'This server requires a token. Paste one above (an admin token sees everything).' : `The token was refused: ${e.rawMessage}. Paste another above.`,
    };
  }
  if (e.code === Code.PermissionDenied) return { kind: 'role', text: `Your token's role may not do this: ${e.rawMessage}.` };
  if (e.code === Code.Unavailable || e.code === Code.Unknown) return { kind: 'other', text: `Cannot reach the server: ${e.rawMessage}.` };
  return { kind: 'other', text: e.rawMessage };
}
