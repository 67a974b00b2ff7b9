"""A Python client using the taskwire package: the gateway, and submit/watch/cancel through TaskService.

    PYTHONPATH=gen/python .venv/bin/python examples/python/client.py --server 127.0.0.1:50051 gateway --text hi
    PYTHONPATH=gen/python .venv/bin/python examples/python/client.py submit --text hi
    PYTHONPATH=gen/python .venv/bin/python examples/python/client.py sleep --ms 5000 --deadline-ms 200
    PYTHONPATH=gen/python .venv/bin/python examples/python/client.py cancel --ms 60000

Each command prints one JSON line with what happened.
"""

import argparse
import json
import os

import grpc

import taskwire
from demo.v1 import demo_pb2
from taskwire.v1 import task_pb2

demo = taskwire.service(demo_pb2, "DemoService")


def gateway(client: taskwire.Client, args) -> dict:
    """The task type as a plain gRPC method: the server queues a task and answers with its result."""
    response, task_id = client.call(demo.Echo, demo_pb2.EchoRequest(text=args.text), timeout=30, with_task_id=True)
    return {"text": response.text, "worker_id": response.worker_id, "task_id": task_id}


def submit(client: taskwire.Client, args) -> dict:
    """SubmitTask with a typed input, then wait for the typed output."""
    task = client.submit(demo.Echo, demo_pb2.EchoRequest(text=args.text))
    output = task.result(timeout=30)
    return {"task_id": task.id, "state": task_pb2.TaskState.Name(task.task.state), "text": output.text, "worker_id": output.worker_id}


def sleep(client: taskwire.Client, args) -> dict:
    """A gateway call with a deadline shorter than the task: DEADLINE_EXCEEDED, and the task is cancelled."""
    try:
        client.call(demo.Sleep, demo_pb2.SleepRequest(duration_ms=args.ms), timeout=args.deadline_ms / 1000)
        return {"code": "OK"}
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details()}


def cancel(client: taskwire.Client, args) -> dict:
    """Submits a long Sleep, waits until a worker runs it, cancels it, and waits for the outcome."""
    task = client.submit(demo.Sleep, demo_pb2.SleepRequest(duration_ms=args.ms))
    for _ in task.watch(timeout=30):
        if task.task.state == task_pb2.TASK_STATE_RUNNING:
            break
    task.cancel("cancelled from python")
    try:
        task.result(timeout=30)
        return {"task_id": task.id, "state": "SUCCEEDED"}
    except taskwire.TaskCancelled as error:
        return {"task_id": task.id, "state": "CANCELLED", "reason": error.reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--token", default=os.environ.get("TASKWIRE_TOKEN"), help="bearer token, when the server has tokens on")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("gateway", "submit"):
        commands.add_parser(name).add_argument("--text", default="hello from python")
    command = commands.add_parser("sleep")
    command.add_argument("--ms", type=int, default=5000)
    command.add_argument("--deadline-ms", type=int, default=200)
    commands.add_parser("cancel").add_argument("--ms", type=int, default=60000)
    args = parser.parse_args()
    with taskwire.Client(args.server, token=args.token) as client:
        result = {"gateway": gateway, "submit": submit, "sleep": sleep, "cancel": cancel}[args.command](client, args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
