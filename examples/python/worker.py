"""A Python worker serving demo.v1.DemoService/Echo and Sleep.

    PYTHONPATH=gen/python:examples/python /usr/bin/python3 examples/python/worker.py --server 127.0.0.1:50051
"""

import argparse
import logging
import signal
import time

from demo.v1 import demo_pb2
from taskwire_worker import Worker

SERVICE = "/demo.v1.DemoService"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--worker-id", default="python-worker")
    parser.add_argument("--slots", type=int, default=4)
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
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run()


if __name__ == "__main__":
    main()
