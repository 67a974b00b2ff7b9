import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';

/**
 * OpenTelemetry through @opentelemetry/api alone: with no SDK registered
 * every call here is a no-op. The task carries the submitter's context as
 * W3C `traceparent`/`tracestate` in TaskOptions.trace_context, written and
 * read with the application's registered propagator.
 */

/** Task span attributes. */
export const ATTR = {
  taskId: 'taskwire.task.id',
  type: 'taskwire.task.type',
  attempt: 'taskwire.task.attempt',
  queue: 'taskwire.task.queue',
  count: 'taskwire.tasks',
} as const;

export const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;

export function tracer(): Tracer {
  return trace.getTracer('taskwire');
}

/** The active context as a carrier (empty when nothing is traced). */
export function injectTraceContext(from: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(from, carrier);
  return carrier;
}

/** A carrier's context; undefined when it carries no valid span context. */
export function extractTraceContext(carrier: Readonly<Record<string, string>> | undefined): Context | undefined {
  if (carrier === undefined || carrier.traceparent === undefined) return undefined;
  const extracted = propagation.extract(ROOT_CONTEXT, carrier);
  return trace.getSpanContext(extracted) === undefined ? undefined : extracted;
}

/** The trace context headers of a call's metadata, as a task carries them. */
export function traceHeaders(get: (key: string) => string | undefined): Record<string, string> {
  const carrier: Record<string, string> = {};
  for (const key of TRACE_HEADERS) {
    const value = get(key);
    if (value !== undefined) carrier[key] = value;
  }
  return carrier;
}

/**
 * The trace id of a W3C `traceparent` (version 00's layout), read without
 * an SDK: logs carry it whether or not the application traces.
 */
export function traceIdOf(carrier: Readonly<Record<string, string>> | undefined): string | undefined {
  const id = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(carrier?.traceparent ?? '')?.[1];
  return id === undefined || /^0+$/.test(id) ? undefined : id;
}

/** A task's fields in a log line: `task_id`, and `trace_id` when it carries a trace context. */
export function taskLogFields(id: string, carrier?: Readonly<Record<string, string>>): { task_id: string; trace_id?: string } {
  const traceId = traceIdOf(carrier);
  return traceId === undefined ? { task_id: id } : { task_id: id, trace_id: traceId };
}

/** Ends a span with an error recorded. */
export function endWithError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

/**
 * The span of one attempt on a worker: a child of the submitter's span for
 * the first attempt; a retry starts a trace of its own, linked to the
 * submitter's span, so a task retried over hours does not stretch one trace.
 */
export function startAttemptSpan(
  carrier: Readonly<Record<string, string>>,
  task: { readonly taskId: string; readonly type: string; readonly attempt: number; readonly queue: string },
): { span: Span; context: Context } | undefined {
  const parent = extractTraceContext(carrier);
  if (parent === undefined) return undefined;
  const submitter = trace.getSpanContext(parent) as SpanContext;
  const links: Link[] = task.attempt > 1 ? [{ context: submitter, attributes: { 'taskwire.link': 'submitter' } }] : [];
  const span = tracer().startSpan(
    `taskwire.run ${task.type}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: { [ATTR.taskId]: task.taskId, [ATTR.type]: task.type, [ATTR.attempt]: task.attempt, [ATTR.queue]: task.queue },
      links,
      ...(task.attempt > 1 ? { root: true } : {}),
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}
