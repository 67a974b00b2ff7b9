/** The baseline's worker: raw grpc-js, Connect with credits, Echo only, results batched per turn (or one message each with `each`). */
import * as grpc from '@grpc/grpc-js';
import { EchoRequest, EchoResponse } from '../../gen/ts/demo/v1/demo.js';
import { ProtocolVersion, type Complete, type ConnectResponse } from '../../gen/ts/taskwire/v1/worker_service.js';
import { Batcher, definitions } from './protocol.js';

const [address = '127.0.0.1:50051', slots = '16', batching = 'batched'] = process.argv.slice(2);
const client = new grpc.Client(address, grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest(definitions.connect.path, definitions.connect.requestSerialize, definitions.connect.responseDeserialize);
const results = new Batcher<Complete>((completes) =>
  call.write({ completes, credit: completes.length, fails: [], progress: [], releases: [], heartbeat: false }),
  batching === 'each',
);
call.write({ hello: { workerId: `baseline-${process.pid}`, taskTypes: ['/demo.v1.DemoService/Echo'], slots: Number(slots), labels: {}, version: 'baseline', protocol: ProtocolVersion.PROTOCOL_VERSION_1, resume: [] }, credit: 0, completes: [], fails: [], progress: [], releases: [], heartbeat: false });
call.on('data', (response: ConnectResponse) => {
  for (const assignment of response.assignments) {
    const request = EchoRequest.decode(assignment.input!.value);
    const output = Buffer.from(EchoResponse.encode({ text: request.text, payload: request.payload, workerId: '', attempt: assignment.attempt }).finish());
    results.push({ taskId: assignment.taskId, attempt: assignment.attempt, output: { typeUrl: 'type.googleapis.com/demo.v1.EchoResponse', value: output } });
  }
});
call.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
