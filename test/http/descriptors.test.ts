import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Descriptors } from '../../src/cli/descriptors.js';
import { createTaskwireServer, type TaskwireServer } from '../../src/server/index.js';
import { postJson } from './helpers.js';

/**
 * A task service the server knows only from a descriptor set (as with
 * `taskwire server --descriptor acme.binpb --services acme.v1.Greeter`):
 * its gateway is served over HTTP, and its messages read and write as JSON
 * with "@type", from that set alone.
 */
const string = (name: string, number: number) => ({
  name,
  number,
  label: FieldDescriptorProto_Label.OPTIONAL,
  type: FieldDescriptorProto_Type.STRING,
  jsonName: name,
});
const acme = create(FileDescriptorSetSchema, {
  file: [
    {
      name: 'acme/v1/greeter.proto',
      package: 'acme.v1',
      syntax: 'proto3',
      messageType: [
        { name: 'GreetRequest', field: [string('name', 1)] },
        { name: 'GreetResponse', field: [string('greeting', 1)] },
      ],
      service: [{ name: 'Greeter', method: [{ name: 'Greet', inputType: '.acme.v1.GreetRequest', outputType: '.acme.v1.GreetResponse' }] }],
    },
  ],
});

let dir: string;
let server: TaskwireServer;
let baseUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'taskwire-http-acme-'));
  const set = join(dir, 'acme.binpb');
  writeFileSync(set, toBinary(FileDescriptorSetSchema, acme));
  server = createTaskwireServer({ dbPath: join(dir, 'tasks.db'), logger: pino({ level: 'silent' }), descriptorSet: set, httpListen: '127.0.0.1:0' });
  server.addTaskTypes(new Descriptors([set]).taskTypes(['acme.v1.Greeter']));
  await server.listen('127.0.0.1:0');
  baseUrl = `http://127.0.0.1:${server.httpPort}`;
});
afterAll(async () => {
  await server.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

it('takes and shows the service’s own messages as JSON, named by "@type"', async () => {
  const input = { '@type': 'type.googleapis.com/acme.v1.GreetRequest', name: 'Ada' };
  const submitted = await postJson(baseUrl, '/taskwire.v1.TaskService/SubmitTask', { type: '/acme.v1.Greeter/Greet', input });
  expect(submitted.status).toBe(200);
  const got = await postJson(baseUrl, '/taskwire.v1.TaskService/GetTask', { id: submitted.json.task.id });
  expect(got.json.task.input).toEqual(input);
});

it('serves the service’s gateway over HTTP, its JSON checked against the descriptor', async () => {
  // No worker here: the call waits for one until its deadline, then its task is cancelled.
  const call = await postJson(baseUrl, '/acme.v1.Greeter/Greet', { name: 'Grace' }, { 'connect-timeout-ms': '200' });
  expect([call.status, call.json.code]).toEqual([504, 'deadline_exceeded']);
  const typo = await postJson(baseUrl, '/acme.v1.Greeter/Greet', { nmae: 'Grace' });
  expect([typo.status, typo.json.code]).toEqual([400, 'invalid_argument']);
  expect(typo.json.message).toMatch(/nmae/);
});

it('refuses to start when a served task service is missing from the descriptor sets, naming it', async () => {
  const set = join(dir, 'acme.binpb');
  const bare = createTaskwireServer({ dbPath: join(dir, 'bare.db'), logger: pino({ level: 'silent' }), httpListen: '127.0.0.1:0' });
  bare.addTaskTypes(new Descriptors([set]).taskTypes(['acme.v1.Greeter']));
  await expect(bare.listen('127.0.0.1:0')).rejects.toThrow(/service acme\.v1\.Greeter is not in the server's descriptor sets.*--descriptor/);
  await bare.shutdown();
});
