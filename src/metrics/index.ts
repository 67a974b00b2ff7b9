export { createMetricsRegistry } from './registry.js';
export { listenForScrapes, parseMetricsAddress, type MetricsListener } from './listener.js';
export { registerServerMetrics, type ServerMetrics } from './server-metrics.js';
export { registerWorkerMetrics, type AttemptOutcome, type WorkerMetrics } from './worker-metrics.js';
export { ATTR, extractTraceContext, injectTraceContext, startAttemptSpan, taskLogFields, traceHeaders, traceIdOf, tracer, TRACE_HEADERS } from './tracing.js';
