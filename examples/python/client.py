"""A Python client: calls a task through the gateway, and through TaskService.

    PYTHONPATH=gen/python /usr/bin/python3 examples/python/client.py --server 127.0.0.1:50051 gateway --text hi
    PYTHONPATH=gen/python /usr/bin/python3 examples/python/client.py submit --text hi
    PYTHONPATH=gen/python /usr/bin/python3 examples/python/client.py sleep --ms 5000 --deadline-ms 200

Each command prints one JSON line with what happened.
"""

import argparse
import json

import grpc
from google.protobuf import any_pb2

from demo.v1 import demo_pb2, demo_pb2_grpc
from taskwire.v1 import task_pb2, task_service_pb2, task_service_pb2_grpc

ECHO = "/demo.v1.DemoService/Echo"


def gateway(channel, args):
    """The task service as a plain gRPC method: the server queues a task and returns its result."""
    demo = demo_pb2_grpc.DemoServiceStub(channel)
    response, call = demo.Echo.with_call(demo_pb2.EchoRequest(text=args.text), timeout=30)
    task_id = dict(call.initial_metadata()).get("taskwire-task-id")
    return {"text": response.text, "worker_id": response.worker_id, "task_id": task_id}


def submit(channel, args):
    """SubmitTask with the input packed as Any, then WatchTask until the task ends."""
    tasks = task_service_pb2_grpc.TaskServiceStub(channel)
    packed = any_pb2.Any()
    packed.Pack(demo_pb2.EchoRequest(text=args.text), type_url_prefix="type.googleapis.com")
    submitted = tasks.SubmitTask(task_service_pb2.SubmitTaskRequest(type=ECHO, input=packed), timeout=10)
    task = submitted.task
    for event in tasks.WatchTask(task_service_pb2.WatchTaskRequest(id=task.id), timeout=30):
        if event.HasField("task"):
            task = event.task
    output = demo_pb2.EchoResponse()
    task.output.Unpack(output)
    return {"task_id": task.id, "state": task_pb2.TaskState.Name(task.state), "text": output.text, "worker_id": output.worker_id}


def sleep(channel, args):
    """A gateway call with a deadline shorter than the task: DEADLINE_EXCEEDED, and the task is cancelled."""
    demo = demo_pb2_grpc.DemoServiceStub(channel)
    try:
        demo.Sleep(demo_pb2.SleepRequest(duration_ms=args.ms), timeout=args.deadline_ms / 1000)
        return {"code": "OK"}
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details()}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="127.0.0.1:50051")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("gateway", "submit"):
        command = commands.add_parser(name)
        command.add_argument("--text", default="hello from python")
    command = commands.add_parser("sleep")
    command.add_argument("--ms", type=int, default=5000)
    command.add_argument("--deadline-ms", type=int, default=200)
    args = parser.parse_args()
    with grpc.insecure_channel(args.server) as channel:
        result = {"gateway": gateway, "submit": submit, "sleep": sleep}[args.command](channel, args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
