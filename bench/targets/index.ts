import type { Target } from '../lib.js';
import { bullmq } from './bullmq.js';
import { stream as grpcStream, unary as grpcUnary } from './grpc.js';
import { rabbitmq } from './rabbitmq.js';
import { gateway, session, unary } from './taskwire.js';

/** Every target, by the name --target takes. */
export const targets: Record<string, Target> = {
  taskwire: session,
  'taskwire-unary': unary,
  'taskwire-gateway': gateway,
  grpc: grpcStream,
  'grpc-unary': grpcUnary,
  rabbitmq,
  bullmq,
};
