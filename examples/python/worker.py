"""A Python worker serving demo.v1.DemoService (Echo, Sleep, Fail) with the taskwire package.

    python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation --no-index ./python
    PYTHONPATH=gen/python .venv/bin/python examples/python/worker.py --server 127.0.0.1:50051

Settings come from flags or, as for the taskwire CLI, from TASKWIRE_SERVER,
TASKWIRE_CONCURRENCY, TASKWIRE_WORKER_ID, TASKWIRE_GRACE_MS and TASKWIRE_TOKEN. On SIGTERM it
takes nothing new, lets running tasks finish within the grace period, hands
back the rest and exits 0.
"""

import argparse
import asyncio
import logging
import os
import sys
import time

import taskwire
from demo.v1 import demo_pb2


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=env("TASKWIRE_SERVER", "127.0.0.1:50051"))
    parser.add_argument("--worker-id", default=env("TASKWIRE_WORKER_ID", f"python-worker-{os.getpid()}"))
    parser.add_argument("--slots", type=int, default=int(env("TASKWIRE_CONCURRENCY", "4")))
    parser.add_argument("--grace-ms", type=int, default=int(env("TASKWIRE_GRACE_MS", "30000")))
    parser.add_argument("--token", default=env("TASKWIRE_TOKEN"), help="bearer token, when the server has tokens on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s", stream=sys.stdout)

    async def echo(request: demo_pb2.EchoRequest, ctx: taskwire.Context) -> demo_pb2.EchoResponse:
        return demo_pb2.EchoResponse(text=request.text, payload=request.payload, worker_id=args.worker_id, attempt=ctx.attempt)

    async def sleep(request: demo_pb2.SleepRequest, ctx: taskwire.Context) -> demo_pb2.SleepResponse:
        started = time.monotonic()
        steps = max(1, request.steps)
        for step in range(1, steps + 1):
            await asyncio.sleep(request.duration_ms / 1000 / steps)  # a cancel arrives here as CancelledError
            if request.steps:
                ctx.progress(100 * step / steps, f"step {step} of {steps}")
        return demo_pb2.SleepResponse(slept_ms=int((time.monotonic() - started) * 1000))

    async def fail(request: demo_pb2.FailRequest, ctx: taskwire.Context) -> demo_pb2.FailResponse:
        if request.fail_attempts == 0 or ctx.attempt <= request.fail_attempts:
            raise taskwire.TaskError(request.message or "failed on request", code=request.code or 2, retryable=not request.permanent)
        return demo_pb2.FailResponse(attempt=ctx.attempt)

    worker = taskwire.Worker(args.server, worker_id=args.worker_id, slots=args.slots, grace=args.grace_ms / 1000, token=args.token)
    worker.add_service(taskwire.service(demo_pb2, "DemoService"), {"Echo": echo, "Sleep": sleep, "Fail": fail})
    try:
        worker.serve()
    except taskwire.WorkerRefused as error:
        logging.error("%s", error)
        sys.exit(1)


if __name__ == "__main__":
    main()
