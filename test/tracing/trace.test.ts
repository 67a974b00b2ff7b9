import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Metadata } from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoServiceDefinition, EchoRequest, FailRequest } from '../../gen/ts/demo/v1/demo.js';
import { TaskState } from '../../gen/ts/taskwire/v1/task.js';
import { pack } from '../../src/client/index.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';
import { waitFor } from '../helpers/wait.js';

const ECHO = '/demo.v1.DemoService/Echo';
const FAIL = '/demo.v1.DemoService/Fail';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();
let stack: Awaited<ReturnType<typeof startStack>>;

beforeAll(async () => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  stack = await startStack({ httpListen: '127.0.0.1:0' });
  const tracer = trace.getTracer('handler');
  await stack.worker({}, (defaults) => ({
    ...defaults,
    // The handler's own span must nest under the attempt's span.
    echo: (request, ctx) => tracer.startActiveSpan('handler work', (span) => Promise.resolve(defaults.echo(request, ctx)).finally(() => span.end())),
  }));
});

afterAll(async () => {
  await stack?.stop();
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
});

const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const named = (spans: readonly ReadableSpan[], prefix: string) => spans.filter((s) => s.name.startsWith(prefix));
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('one trace across the task hop, over real sockets', () => {
  it('client span → server submit and commit spans → the worker’s attempt span → the handler’s span', async () => {
    const client = stack.client();
    const tracer = trace.getTracer('app');
    const outer = tracer.startSpan('checkout', { kind: SpanKind.CLIENT });
    const outcome = await context.with(trace.setSpan(context.active(), outer), () => client.run(ECHO, pack(EchoRequest, { text: 'hi' })));
    outer.end();
    expect(outcome.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    const { traceId, spanId } = outer.spanContext();

    const spans = await waitFor(() => {
      const found = spansOf(traceId);
      return named(found, 'handler work').length === 1 && named(found, 'taskwire.run').length === 1 ? found : undefined;
    }, { what: 'the worker spans' });
    const [submit] = named(spans, `taskwire.submit ${ECHO}`);
    const [commit] = named(spans, 'taskwire.store.commit');
    const [attempt] = named(spans, `taskwire.run ${ECHO}`);
    const [work] = named(spans, 'handler work');
    expect(parentOf(submit!)).toBe(spanId);
    expect(parentOf(commit!)).toBe(submit!.spanContext().spanId);
    expect(parentOf(attempt!)).toBe(spanId);
    expect(parentOf(work!)).toBe(attempt!.spanContext().spanId);
    expect(attempt!.kind).toBe(SpanKind.CONSUMER);
    expect(attempt!.attributes).toMatchObject({
      'taskwire.task.id': outcome.taskId,
      'taskwire.task.type': ECHO,
      'taskwire.task.attempt': 1,
      'taskwire.task.queue': 'default',
      'taskwire.task.outcome': 'succeeded',
    });
    const stored = await client.get(outcome.taskId);
    expect(stored.options?.traceContext.traceparent).toContain(traceId);
  });

  it('a retried task: each attempt a span, the retry a new trace linked to the submitter, errors recorded', async () => {
    const client = stack.client();
    const outer = trace.getTracer('app').startSpan('retrying');
    const outcome = await context.with(trace.setSpan(context.active(), outer), () =>
      client.run(FAIL, pack(FailRequest, { failAttempts: 1 }), { maxAttempts: 3, backoff: { initialMs: 10, maxMs: 20 } }),
    );
    outer.end();
    expect(outcome.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    const attempts = await waitFor(() => {
      const found = exporter.getFinishedSpans().filter((s) => s.attributes['taskwire.task.id'] === outcome.taskId && s.name.startsWith('taskwire.run'));
      return found.length === 2 ? found.sort((a, b) => Number(a.attributes['taskwire.task.attempt']) - Number(b.attributes['taskwire.task.attempt'])) : undefined;
    }, { what: 'both attempt spans' });
    const [first, retry] = attempts as [ReadableSpan, ReadableSpan];
    expect(first.spanContext().traceId).toBe(outer.spanContext().traceId);
    expect(parentOf(first)).toBe(outer.spanContext().spanId);
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.events.some((e) => e.name === 'exception')).toBe(true);
    expect(retry.attributes['taskwire.task.attempt']).toBe(2);
    expect(retry.parentSpanContext).toBeUndefined();
    expect(retry.spanContext().traceId).not.toBe(outer.spanContext().traceId);
    expect(retry.links.map((l) => l.context.spanId)).toEqual([outer.spanContext().spanId]);
    expect(retry.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it('the gateway takes traceparent from the call’s metadata', async () => {
    const outer = trace.getTracer('app').startSpan('gateway caller');
    const headers: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), outer), headers);
    const channel = createRpcChannel(stack.address);
    try {
      const demo = createRpcClient(DemoServiceDefinition, channel);
      await demo.echo({ text: 'via gateway' }, { metadata: Metadata(headers) });
    } finally {
      channel.close();
    }
    outer.end();
    const spans = await waitFor(() => {
      const found = spansOf(outer.spanContext().traceId);
      return named(found, 'taskwire.run').length === 1 ? found : undefined;
    }, { what: 'the gateway task’s attempt span' });
    expect(parentOf(named(spans, 'taskwire.run')[0]!)).toBe(outer.spanContext().spanId);
    expect(parentOf(named(spans, 'taskwire.submit')[0]!)).toBe(outer.spanContext().spanId);
  });

  it('the gateway over the HTTP listener takes traceparent from the request headers', async () => {
    const outer = trace.getTracer('app').startSpan('http caller');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    propagation.inject(trace.setSpan(context.active(), outer), headers);
    const response = await fetch(`http://127.0.0.1:${stack.server.httpPort}/demo.v1.DemoService/Echo`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ text: 'via http' }),
    });
    expect(response.status).toBe(200);
    outer.end();
    const spans = await waitFor(() => {
      const found = spansOf(outer.spanContext().traceId);
      return named(found, 'taskwire.run').length === 1 ? found : undefined;
    }, { what: 'the HTTP gateway task’s attempt span' });
    expect(parentOf(named(spans, 'taskwire.run')[0]!)).toBe(outer.spanContext().spanId);
  });
});
