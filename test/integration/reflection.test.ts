import { create, createFileRegistry, fromBinary, fromJson, toBinary, toJson } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { ServerReflectionService } from 'nice-grpc-server-reflection';
import { ServerReflectionRequest } from 'nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createRpcChannel, createRpcClient } from '../../src/rpc/index.js';
import { startStack } from '../helpers/inprocess.js';

let stack: Awaited<ReturnType<typeof startStack>> | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const bytes = (b: Uint8Array) => b;

describe('reflection, as grpcurl uses it', () => {
  it('lists the task services and calls a demo task method knowing nothing but the server', async () => {
    stack = await startStack();
    await stack.worker({ workerId: 'reflected' });
    const channel = createRpcChannel(stack.address);
    const reflection = createRpcClient(ServerReflectionService, channel);

    async function ask(request: ServerReflectionRequest) {
      async function* requests() {
        yield request;
      }
      for await (const response of reflection.serverReflectionInfo(requests())) return response;
      throw new Error('no reflection response');
    }

    const listed = await ask(new ServerReflectionRequest().setListServices('*'));
    const services = listed.getListServicesResponse()!.getServiceList().map((s) => s.getName());
    expect(services).toEqual(expect.arrayContaining(['demo.v1.DemoService', 'taskwire.v1.TaskService', 'taskwire.v1.WorkerService']));

    // Like `grpcurl describe`: the file defining the service, then every import it lacks, by name.
    const decode = (response: Awaited<ReturnType<typeof ask>>) =>
      response.getFileDescriptorResponse()!.getFileDescriptorProtoList_asU8().map((file) => fromBinary(FileDescriptorProtoSchema, file));
    const files = new Map(decode(await ask(new ServerReflectionRequest().setFileContainingSymbol('demo.v1.DemoService'))).map((f) => [f.name, f]));
    for (let missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d)); missing.length > 0; ) {
      for (const file of decode(await ask(new ServerReflectionRequest().setFileByFilename(missing[0]!)))) files.set(file.name, file);
      missing = [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d));
    }
    // Imports first, as a FileDescriptorSet lists them.
    const ordered: typeof sorted = [];
    const sorted = [...files.values()];
    const visit = (file: (typeof sorted)[number]) => {
      if (ordered.includes(file)) return;
      for (const dep of file.dependency) visit(files.get(dep)!);
      ordered.push(file);
    };
    sorted.forEach(visit);
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    const method = registry.getService('demo.v1.DemoService')!.methods.find((m) => m.name === 'Echo')!;

    // Like `grpcurl -d '{"text": "…"}' … demo.v1.DemoService/Echo`.
    const raw = createRpcClient(
      {
        echo: {
          path: '/demo.v1.DemoService/Echo',
          requestStream: false,
          responseStream: false,
          requestSerialize: bytes,
          requestDeserialize: bytes,
          responseSerialize: bytes,
          responseDeserialize: bytes,
          options: {},
        },
      },
      channel,
    );
    const request = toBinary(method.input, fromJson(method.input, { text: 'via reflection' }));
    const response = toJson(method.output, fromBinary(method.output, await raw.echo(request)));
    expect(response).toEqual({ text: 'via reflection', workerId: 'reflected', attempt: 1 });
    channel.close();
  });
});

describe('reflection v1alpha, as older grpcurl builds and many language clients speak it', () => {
  it('answers file_containing_symbol with the file and all its imports in one answer', async () => {
    stack = await startStack();
    const channel = createRpcChannel(stack.address);
    const v1alpha = Object.fromEntries(
      Object.entries(ServerReflectionService).map(([name, method]) => [
        name,
        { ...method, path: method.path.replace('/grpc.reflection.v1.', '/grpc.reflection.v1alpha.') },
      ]),
    ) as typeof ServerReflectionService;
    const reflection = createRpcClient(v1alpha, channel);
    async function* requests() {
      yield new ServerReflectionRequest().setListServices('*');
      yield new ServerReflectionRequest().setFileContainingSymbol('demo.v1.DemoService');
    }
    const answers = [];
    for await (const response of reflection.serverReflectionInfo(requests())) answers.push(response);
    expect(answers[0]!.getListServicesResponse()!.getServiceList().map((s) => s.getName())).toContain('demo.v1.DemoService');

    const files = answers[1]!.getFileDescriptorResponse()!.getFileDescriptorProtoList_asU8().map((f) => fromBinary(FileDescriptorProtoSchema, f));
    expect(files[0]!.name).toBe('demo/v1/demo.proto');
    const names = new Set(files.map((f) => f.name));
    // Every import, transitively, is in the same answer: a registry builds from it alone.
    for (const file of files) for (const dependency of file.dependency) expect(names, `${file.name} imports ${dependency}`).toContain(dependency);
    expect(files.length).toBe(names.size);
    const ordered = [...files].reverse();
    const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
    expect(registry.getService('demo.v1.DemoService')?.methods.map((m) => m.name)).toContain('Echo');
    channel.close();
  });
});
