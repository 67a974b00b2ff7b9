/**
 * The fault suite's health probe: asks grpc.health.v1.Health/Check every
 * 50 ms for `duration-ms` and prints each change as {"health": status}.
 *
 *   node --import tsx test/faults/health.ts <server> <duration-ms>
 */
import { HealthDefinition } from 'nice-grpc-server-health';
import { HealthCheckResponse_ServingStatus as Status } from 'nice-grpc-server-health/lib/proto/grpc/health/v1/health.js';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';

const [server = '', durationText = '60000'] = process.argv.slice(2);
const health = createRpcClient(HealthDefinition, createRpcChannel(server));
const end = Date.now() + Number(durationText);
let last = '';
while (Date.now() < end) {
  let status: string;
  try {
    status = Status[(await health.check({ service: '' }, { deadline: 1_000 })).status] ?? 'UNKNOWN';
  } catch (error) {
    status = `error: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (status !== last) process.stdout.write(`${JSON.stringify({ health: status, at: Date.now() })}\n`);
  last = status;
  await new Promise((r) => setTimeout(r, 50));
}
process.exit(0);
