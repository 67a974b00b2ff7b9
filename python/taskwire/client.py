"""The task client: submit typed inputs, watch and wait for typed results, cancel; or call through the gateway.

    with Client("127.0.0.1:50051") as client:
        demo = taskwire.service(demo_pb2, "DemoService")
        task = client.submit(demo.Echo, demo_pb2.EchoRequest(text="hi"), max_attempts=3)
        response = task.result(timeout=30)          # a demo_pb2.EchoResponse
        response = client.call(demo.Echo, demo_pb2.EchoRequest(text="hi"), timeout=30)  # the gateway
"""

from datetime import datetime, timedelta
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from .errors import TaskCancelled, TaskFailed
from .service import Method
from .v1 import task_pb2, task_service_pb2 as ts, task_service_pb2_grpc as ts_grpc

__all__ = ["Client", "TaskHandle", "TERMINAL"]

TERMINAL = {task_pb2.TASK_STATE_SUCCEEDED, task_pb2.TASK_STATE_FAILED, task_pb2.TASK_STATE_CANCELLED}
TASK_ID_HEADER = "taskwire-task-id"
IDEMPOTENCY_KEY_HEADER = "taskwire-idempotency-key"

MethodLike = Union[Method, MethodDescriptor]


def _method(method: MethodLike) -> Method:
    if isinstance(method, Method):
        return method
    if isinstance(method, MethodDescriptor):
        return Method(method)
    raise TypeError(f"expected a task type (taskwire.service(...).Name or a MethodDescriptor), got {method!r}")


class TaskHandle:
    """A submitted task: its id, and typed access to its result."""

    def __init__(self, client: "Client", method: Method, task: task_pb2.Task, existing: bool = False):
        self._client = client
        self.method = method
        self.id = task.id
        #: The task as last seen.
        self.task = task
        #: True when an idempotency key matched an earlier task.
        self.existing = existing

    def __repr__(self) -> str:
        return f"TaskHandle({self.id}, {self.method.path})"

    def watch(self, timeout: Optional[float] = None) -> Iterator[ts.WatchTaskResponse]:
        """Each committed change (`event.task`) and progress report (`event.progress`) until the task ends."""
        for event in self._client.watch(self.id, timeout=timeout):
            if event.HasField("task"):
                self.task = event.task
            yield event

    def result(self, timeout: Optional[float] = None) -> Message:
        """Waits for the task to end; returns its output as the method's response message.

        Raises TaskFailed or TaskCancelled, or grpc.RpcError (DEADLINE_EXCEEDED) after `timeout` seconds.
        """
        if self.task.state not in TERMINAL:
            for _ in self.watch(timeout=timeout):
                if self.task.state in TERMINAL:
                    break
        if self.task.state not in TERMINAL:
            raise RuntimeError(f"the watch of task {self.id} ended before the task did")
        if self.task.state == task_pb2.TASK_STATE_SUCCEEDED and not self.task.HasField("output"):
            self.task = self._client.get(self.id)
        return _outcome(self.method, self.task)

    def cancel(self, reason: str = "") -> task_pb2.Task:
        self.task = self._client.cancel(self.id, reason)
        return self.task


def _task_options(queue, priority, delay, run_at, max_attempts, execution_timeout, queue_timeout, idempotency_key, labels) -> task_pb2.TaskOptions:
    options = task_pb2.TaskOptions(
        queue=queue or "",
        max_attempts=max_attempts or 0,
        idempotency_key=idempotency_key or "",
        labels=dict(labels or {}),
    )
    if priority is not None:
        options.priority = priority  # unset keeps the task type's default priority
    if delay is not None:
        options.delay.FromTimedelta(delay)
    if run_at is not None:
        options.run_at.FromDatetime(run_at)
    if execution_timeout is not None:
        options.execution_timeout.FromTimedelta(execution_timeout)
    if queue_timeout is not None:
        options.queue_timeout.FromTimedelta(queue_timeout)
    return options


def _outcome(method: Method, task: task_pb2.Task) -> Message:
    if task.state == task_pb2.TASK_STATE_SUCCEEDED:
        return method.unpack_output(task.output)
    if task.state == task_pb2.TASK_STATE_CANCELLED:
        raise TaskCancelled(task)
    raise TaskFailed(task)


class Client:
    """A taskwire client over one gRPC channel (sync; safe to share between threads)."""

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
            self.channel = grpc.secure_channel(server, credentials, options=list(channel_options))
        else:
            self.channel = grpc.insecure_channel(server, options=list(channel_options))
        self._metadata: Tuple[Tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.tasks = ts_grpc.TaskServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- TaskService -------------------------------------------------------------------

    def submit(
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
    ) -> TaskHandle:
        """Submits one task; returns once the server has committed it. Unset options take the defaults."""
        method = _method(method)
        options = _task_options(queue, priority, delay, run_at, max_attempts, execution_timeout, queue_timeout, idempotency_key, labels)
        submitted = self.tasks.SubmitTask(
            ts.SubmitTaskRequest(type=method.path, input=method.pack_input(request), options=options),
            timeout=timeout,
            metadata=self._metadata,
        )
        return TaskHandle(self, method, submitted.task, submitted.existing)

    def handle(self, method: MethodLike, task_id: str) -> TaskHandle:
        """A handle on a task submitted earlier (by id)."""
        return TaskHandle(self, _method(method), self.get(task_id))

    def get(self, task_id: str, timeout: float = 30.0) -> task_pb2.Task:
        return self.tasks.GetTask(ts.GetTaskRequest(id=task_id), timeout=timeout, metadata=self._metadata).task

    def watch(self, task_id: str, timeout: Optional[float] = None) -> Iterator[ts.WatchTaskResponse]:
        """WatchTask: the task's current state first, then each change and progress report until it ends."""
        call = self.tasks.WatchTask(ts.WatchTaskRequest(id=task_id), timeout=timeout, metadata=self._metadata)
        try:
            for event in call:
                yield event
                if event.HasField("task") and event.task.state in TERMINAL:
                    return
        finally:
            call.cancel()  # also when the caller stops iterating early

    def cancel(self, task_id: str, reason: str = "", timeout: float = 30.0) -> task_pb2.Task:
        """Cancels a task; a running handler is told at once."""
        return self.tasks.CancelTask(ts.CancelTaskRequest(id=task_id, reason=reason), timeout=timeout, metadata=self._metadata).task

    # -- the gateway ---------------------------------------------------------------------

    def call(
        self,
        method: MethodLike,
        request: Message,
        *,
        timeout: Optional[float] = None,
        idempotency_key: Optional[str] = None,
        with_task_id: bool = False,
    ) -> Any:
        """Calls the task type as a plain gRPC method: the server queues a task and answers with its result.

        The timeout becomes the task's deadline; a failed task raises grpc.RpcError
        with its code. with_task_id=True returns (response, task_id).
        """
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
        response, call = unary.with_call(request, timeout=timeout, metadata=metadata or None)
        if with_task_id:
            return response, dict(call.initial_metadata() or ()).get(TASK_ID_HEADER)
        return response
