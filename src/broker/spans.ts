import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { NewTask } from '../store/index.js';

/**
 * Server spans of a submit, through @opentelemetry/api (a no-op without an
 * SDK): one per task that carries a trace context, a child of the
 * submitter's span, and one for the store commit that made them durable.
 * Tasks without a trace context cost nothing here.
 */
export interface SubmitSpans {
  /** Runs the commit inside its span. */
  commit<T>(run: () => Promise<T>): Promise<T>;
  end(error?: unknown): void;
}

const NONE: SubmitSpans = { commit: (run) => run(), end: () => undefined };

export function startSubmitSpans(tasks: readonly NewTask[]): SubmitSpans {
  let spans: Span[] | undefined;
  for (const task of tasks) {
    if (task.options.traceContext.traceparent === undefined) continue;
    const parent = propagation.extract(ROOT_CONTEXT, task.options.traceContext);
    if (trace.getSpanContext(parent) === undefined) continue;
    const span = trace.getTracer('taskwire').startSpan(
      `taskwire.submit ${task.type}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: { 'taskwire.task.id': task.id, 'taskwire.task.type': task.type, 'taskwire.task.queue': task.options.queue },
      },
      parent,
    );
    (spans ??= []).push(span);
  }
  if (spans === undefined) return NONE;
  const all = spans;
  return {
    async commit(run) {
      const [first, ...rest] = all;
      const span = trace.getTracer('taskwire').startSpan(
        'taskwire.store.commit',
        { kind: SpanKind.INTERNAL, attributes: { 'taskwire.tasks': tasks.length }, links: rest.map((s) => ({ context: s.spanContext() })) },
        trace.setSpan(ROOT_CONTEXT, first!),
      );
      try {
        const result = await run();
        span.end();
        return result;
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        throw error;
      }
    },
    end(error) {
      for (const span of all) {
        if (error !== undefined) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      }
    },
  };
}
