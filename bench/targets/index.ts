import type { Target } from '../lib.js';
import { bullmq } from './bullmq.js';
import { stream as grpcStream, streamEach as grpcStreamEach, unary as grpcUnary } from './grpc.js';
import { goWorkers, pythonWorkers } from './other-workers.js';
import { rabbitmq, rabbitmqQuorum } from './rabbitmq.js';
import { call, connectJson, gateway, postgres, session, sessionWithMetrics, unary } from './taskwire.js';

/** Every target, by the name --target takes. */
export const targets: Record<string, Target> = {
  taskwire: session,
  'taskwire-metrics': sessionWithMetrics,
  'taskwire-unary': unary,
  'taskwire-gateway': gateway,
  'taskwire-call': call,
  'taskwire-connect-json': connectJson,
  'taskwire-python-worker': pythonWorkers,
  'taskwire-go-worker': goWorkers,
  grpc: grpcStream,
  'grpc-each': grpcStreamEach,
  'grpc-unary': grpcUnary,
  rabbitmq,
  'rabbitmq-quorum': rabbitmqQuorum,
  bullmq,
  'taskwire-pg-1': postgres(1),
  'taskwire-pg-2': postgres(2),
  'taskwire-pg-3': postgres(3),
};
