"""taskwire for Python: workers and clients for a taskwire server.

    import taskwire
    from demo.v1 import demo_pb2          # your own generated stubs

    demo = taskwire.service(demo_pb2, "DemoService")
    worker = taskwire.Worker("127.0.0.1:50051", slots=4)
    worker.add_service(demo, {"Echo": echo, "Sleep": sleep, "Fail": fail})
    worker.serve()

    with taskwire.Client("127.0.0.1:50051") as client:
        print(client.submit(demo.Echo, demo_pb2.EchoRequest(text="hi")).result(timeout=30))
"""

from .aio_client import AsyncClient, AsyncTaskHandle
from .client import Client, TaskHandle
from .context import Context
from .errors import TaskCancelled, TaskError, TaskFailed, WorkerRefused
from .service import Method, Service, service
from .worker import Worker

__version__ = "0.1.0"
__all__ = [
    "AsyncClient",
    "AsyncTaskHandle",
    "Client",
    "Context",
    "Method",
    "Service",
    "TaskCancelled",
    "TaskError",
    "TaskFailed",
    "TaskHandle",
    "Worker",
    "WorkerRefused",
    "service",
]
