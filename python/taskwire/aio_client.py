"""The task client for asyncio code (grpc.aio): the same calls as taskwire.Client, awaited.

    async with AsyncClient("127.0.0.1:50051") as client:
        task = await client.submit(demo.Echo, demo_pb2.EchoRequest(text="hi"))
        response = await task.result(timeout=30)

Use it inside async worker handlers, where the sync Client would block the event loop.
"""

from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Mapping, Optional, Sequence, Tuple

import grpc
from google.protobuf.message import Message

from .client import IDEMPOTENCY_KEY_HEADER, TASK_ID_HEADER, TERMINAL, MethodLike, _method, _outcome, _task_options
from .service import Method
from .v1 import task_pb2, task_service_pb2 as ts, task_service_pb2_grpc as ts_grpc

__all__ = ["AsyncClient", "AsyncTaskHandle"]


class AsyncTaskHandle:
    """A submitted task: its id, and typed access to its result."""

    def __init__(self, client: "AsyncClient", method: Method, task: task_pb2.Task, existing: bool = False):
        self._client = client
        self.method = method
        self.id = task.id
        #: The task as last seen.
        self.task = task
        #: True when an idempotency key matched an earlier task.
        self.existing = existing

    def __repr__(self) -> str:
        return f"AsyncTaskHandle({self.id}, {self.method.path})"

    async def watch(self, timeout: Optional[float] = None) -> AsyncIterator[ts.WatchTaskResponse]:
        """Each committed change (`event.task`) and progress report (`event.progress`) until the task ends."""
        async for event in self._client.watch(self.id, timeout=timeout):
            if event.HasField("task"):
                self.task = event.task
            yield event

    async def result(self, timeout: Optional[float] = None) -> Message:
        """Waits for the task to end; returns its output as the method's response message.

        Raises TaskFailed or TaskCancelled, or grpc.RpcError (DEADLINE_EXCEEDED) after `timeout` seconds.
        """
        if self.task.state not in TERMINAL:
            async for _ in self.watch(timeout=timeout):
                if self.task.state in TERMINAL:
                    break
        if self.task.state not in TERMINAL:
            raise RuntimeError(f"the watch of task {self.id} ended before the task did")
        if self.task.state == task_pb2.TASK_STATE_SUCCEEDED and not self.task.HasField("output"):
            self.task = await self._client.get(self.id)
        return _outcome(self.method, self.task)

    async def cancel(self, reason: str = "") -> task_pb2.Task:
        self.task = await self._client.cancel(self.id, reason)
        return self.task


class AsyncClient:
    """A taskwire client over one grpc.aio channel; create it inside the event loop that uses it."""

    def __init__(
        self,
        server: str,
        *,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Sequence[Tuple[str, Any]] = (),
    ):
        if not isinstance(server, str) or not server:
            raise ValueError("server must be the server's address, e.g. '127.0.0.1:50051'")
        if credentials is not None:
            self.channel = grpc.aio.secure_channel(server, credentials, options=list(channel_options))
        else:
            self.channel = grpc.aio.insecure_channel(server, options=list(channel_options))
        self._metadata: Tuple[Tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.tasks = ts_grpc.TaskServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(
        self,
        method: MethodLike,
        request: Message,
        *,
        queue: Optional[str] = None,
        priority: Optional[int] = None,
        delay: Optional[timedelta] = None,
        run_at: Optional[datetime] = None,
        max_attempts: Optional[int] = None,
        execution_timeout: Optional[timedelta] = None,
        queue_timeout: Optional[timedelta] = None,
        idempotency_key: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        timeout: float = 30.0,
    ) -> AsyncTaskHandle:
        """Submits one task; returns once the server has committed it. Unset options take the defaults."""
        method = _method(method)
        options = _task_options(queue, priority, delay, run_at, max_attempts, execution_timeout, queue_timeout, idempotency_key, labels)
        submitted = await self.tasks.SubmitTask(
            ts.SubmitTaskRequest(type=method.path, input=method.pack_input(request), options=options),
            timeout=timeout,
            metadata=self._metadata,
        )
        return AsyncTaskHandle(self, method, submitted.task, submitted.existing)

    async def handle(self, method: MethodLike, task_id: str) -> AsyncTaskHandle:
        """A handle on a task submitted earlier (by id)."""
        return AsyncTaskHandle(self, _method(method), await self.get(task_id))

    async def get(self, task_id: str, timeout: float = 30.0) -> task_pb2.Task:
        return (await self.tasks.GetTask(ts.GetTaskRequest(id=task_id), timeout=timeout, metadata=self._metadata)).task

    async def watch(self, task_id: str, timeout: Optional[float] = None) -> AsyncIterator[ts.WatchTaskResponse]:
        """WatchTask: the task's current state first, then each change and progress report until it ends."""
        call = self.tasks.WatchTask(ts.WatchTaskRequest(id=task_id), timeout=timeout, metadata=self._metadata)
        try:
            async for event in call:
                yield event
                if event.HasField("task") and event.task.state in TERMINAL:
                    return
        finally:
            call.cancel()  # also when the caller stops iterating early

    async def cancel(self, task_id: str, reason: str = "", timeout: float = 30.0) -> task_pb2.Task:
        """Cancels a task; a running handler is told at once."""
        return (await self.tasks.CancelTask(ts.CancelTaskRequest(id=task_id, reason=reason), timeout=timeout, metadata=self._metadata)).task

    async def call(
        self,
        method: MethodLike,
        request: Message,
        *,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
        with_task_id: bool = False,
    ) -> Any:
        """Calls the task type through the gateway (see Client.call)."""
        method = _method(method)
        if not isinstance(request, method.input_class):
            raise TypeError(f"the input of {method.path} is a {type(request).__name__}, expected {method.input_class.DESCRIPTOR.full_name}")
        metadata = list(self._metadata)
        if idempotency_key:
            metadata.append((IDEMPOTENCY_KEY_HEADER, idempotency_key))
        unary = self.channel.unary_unary(
            method.path,
            request_serializer=method.input_class.SerializeToString,
            response_deserializer=method.output_class.FromString,
        )
        call = unary(request, timeout=timeout, metadata=metadata or None)
        response = await call
        if with_task_id:
            metadata = await call.initial_metadata()
            return response, (metadata.get(TASK_ID_HEADER) if metadata is not None else None)
        return response
