// Expected NOT to compile: test/types/handlers.test.ts checks each error below.
import { DemoServiceDefinition } from '../../../gen/ts/demo/v1/demo.js';
import { createWorker } from '../../../src/worker/index.js';

const worker = createWorker({ server: '127.0.0.1:1' });

// A handler returning the wrong type: echo must return an EchoResponse, not a number.
worker.implement(DemoServiceDefinition, {
  async echo() {
    return 42;
  },
  async sleep() {
    return { sleptMs: 1 };
  },
  async fail() {
    return { attempt: 1 };
  },
});

// A missing handler: fail is not implemented.
worker.implement(DemoServiceDefinition, {
  async echo(request) {
    return { text: request.text };
  },
  async sleep() {
    return { sleptMs: 1 };
  },
});

// A handler that misreads its input: SleepRequest has no field "text".
worker.implement(DemoServiceDefinition, {
  async echo(request) {
    return { text: request.text };
  },
  async sleep(request) {
    return { sleptMs: request.text.length };
  },
  async fail() {
    return { attempt: 1 };
  },
});
