"""A Python worker serving demo.v1.DemoService/Echo and Sleep.

    PYTHONPATH=gen/python:examples/python /usr/bin/python3 examples/python/worker.py --server 127.0.0.1:50051

Settings come from flags or, as for the taskwire CLI, from TASKWIRE_SERVER,
TASKWIRE_CONCURRENCY, TASKWIRE_WORKER_ID and TASKWIRE_GRACE_MS. On SIGTERM it
takes nothing new, lets running tasks finish within the grace period, hands
back the rest and exits 0.
"""

import argparse
import logging
import os
import signal
import time

from demo.v1 import demo_pb2
from taskwire_worker import Worker

SERVICE = "/demo.v1.DemoService"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    env = os.environ.get
    parser.add_argument("--server", default=env("TASKWIRE_SERVER", "127.0.0.1:50051"))
    parser.add_argument("--worker-id", default=env("TASKWIRE_WORKER_ID", f"python-worker-{os.getpid()}"))
    parser.add_argument("--slots", type=int, default=int(env("TASKWIRE_CONCURRENCY", "4")))
    parser.add_argument("--grace-ms", type=int, default=int(env("TASKWIRE_GRACE_MS", "30000")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")

    worker = Worker(args.server, worker_id=args.worker_id, slots=args.slots)

    def echo(request, ctx):
        return demo_pb2.EchoResponse(text=request.text, payload=request.payload, worker_id=args.worker_id)

    def sleep(request, ctx):
        started = time.monotonic()
        steps = max(1, request.steps)
        for step in range(1, steps + 1):
            if ctx.cancelled.wait(request.duration_ms / 1000 / steps):
                raise RuntimeError("cancelled")
            if request.steps:
                ctx.progress(100 * step / steps, f"step {step} of {steps}")
        return demo_pb2.SleepResponse(slept_ms=int((time.monotonic() - started) * 1000))

    worker.handle(f"{SERVICE}/Echo", demo_pb2.EchoRequest, echo)
    worker.handle(f"{SERVICE}/Sleep", demo_pb2.SleepRequest, sleep)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(grace=args.grace_ms / 1000))
    worker.run()


if __name__ == "__main__":
    main()
