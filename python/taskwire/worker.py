"""The worker runtime: WorkerService/Connect as docs/PROTOCOL.md specifies it, on asyncio (grpc.aio).

    worker = Worker("127.0.0.1:50051", slots=4)
    worker.add_service(taskwire.service(demo_pb2, "DemoService"), {"Echo": echo, "Sleep": sleep})
    worker.serve()  # until SIGTERM/SIGINT: running tasks get the grace period, the rest are handed back

A handler is `async def handler(request, ctx) -> response` (or a plain function,
run in a thread). Raise TaskError(message, code, retryable) to classify a
failure; any other exception is a retryable UNKNOWN.
"""

import asyncio
import inspect
import logging
import os
import random
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from . import errors
from .context import Context
from .errors import TaskError, WorkerRefused
from .outbox import Outbox
from .service import Method, Service
from .v1 import worker_service_pb2 as pb

__all__ = ["Worker", "Handler"]

Handler = Callable[[Any, Context], Union[Any, Awaitable[Any]]]
Key = Tuple[str, int]

CONNECT = "/taskwire.v1.WorkerService/Connect"
VERSION = "taskwire-python/0.1.0"
# A Hello refused for these reasons is refused again: stop and say why (PROTOCOL.md §2, §13).
REFUSED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}
# How long a stopping worker waits for the server to acknowledge what it sent last.
ACK_WAIT_S = 5.0
# Reconnect waits grow by this factor (gRPC's own connection backoff uses it), so that after a
# restart of a few seconds the worker is back well within a lease.
BACKOFF_GROWTH = 1.6


class _Attempt:
    __slots__ = ("key", "ctx", "task", "is_async", "slot_session", "released", "expired")

    def __init__(self, key: Key, ctx: Context, is_async: bool, slot_session: int):
        self.key = key
        self.ctx = ctx
        self.task: Optional[asyncio.Task] = None
        self.is_async = is_async
        # The session whose credit this attempt's slot counts in: it gives the slot back only there.
        self.slot_session = slot_session
        self.released = False
        self.expired = False

    def cancel(self, reason: str) -> None:
        self.ctx._cancel(reason)
        # An async handler gets CancelledError; a sync one sees ctx.cancelled and returns.
        if self.is_async and self.task is not None:
            self.task.cancel()


class Worker:
    """Runs handlers for task types, `slots` at a time, on one Connect stream to the server."""

    def __init__(
        self,
        server: str,
        *,
        worker_id: Optional[str] = None,
        slots: int = 4,
        grace: float = 30.0,
        labels: Optional[Mapping[str, str]] = None,
        version: str = VERSION,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel_options: Sequence[Tuple[str, Any]] = (),
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
        logger: Optional[logging.Logger] = None,
    ):
        if not isinstance(server, str) or not server:
            raise ValueError("server must be the server's address, e.g. '127.0.0.1:50051'")
        if not isinstance(slots, int) or not 1 <= slots <= 10_000:
            raise ValueError(f"slots must be an int from 1 to 10000, got {slots!r}")
        if grace < 0:
            raise ValueError(f"grace must be seconds >= 0, got {grace!r}")
        worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        if not 1 <= len(worker_id) <= 256:
            raise ValueError("worker_id must be 1..256 characters")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("reconnect_min must be > 0 and <= reconnect_max")
        self.server = server
        self.worker_id = worker_id
        self.slots = slots
        self.grace = grace
        self.labels = dict(labels or {})
        self.version = version
        self.log = logger or logging.getLogger("taskwire.worker")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._credentials = credentials
        self._channel_options = list(channel_options)
        self._reconnect = (reconnect_min, reconnect_max)
        self._methods: Dict[str, Method] = {}
        self._handlers: Dict[str, Handler] = {}
        self._required: Dict[str, Method] = {}
        self._running: Dict[Key, _Attempt] = {}
        self._unacked: Dict[Key, pb.ConnectRequest] = {}
        self._executor: Optional[ThreadPoolExecutor] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._outbox: Optional[Outbox] = None  # None while disconnected
        self._call = None
        self._session_no = 0
        self._draining = False
        self._stopping = False
        self._stopped: Optional[asyncio.Event] = None
        self._stopper: Optional[asyncio.Task] = None
        #: Set while a session is open (created in run(): an asyncio.Event binds to its loop).
        self.connected: Optional[asyncio.Event] = None

    # -- registering handlers ------------------------------------------------------

    def add_service(self, service: Union[Service, ServiceDescriptor], handlers: Union[Mapping[str, Handler], object]) -> None:
        """Serves every method of a generated service.

        `handlers` maps method names to handlers, or is an object with a method
        per rpc (like a generated Servicer). Every method needs a handler: run()
        refuses to start while one is missing.
        """
        if not isinstance(service, Service):
            service = Service(service)
        for method in service:
            self._required[method.path] = method
            handler = handlers.get(method.name) if isinstance(handlers, Mapping) else getattr(handlers, method.name, None)
            if handler is not None:
                self.handle(method, handler)
        if isinstance(handlers, Mapping):
            unknown = set(handlers) - set(service.methods)
            if unknown:
                raise ValueError(f"{service.full_name} has no method {', '.join(sorted(unknown))} (it has {', '.join(service.methods)})")

    def handle(self, method: Union[Method, MethodDescriptor], handler: Handler) -> None:
        """Serves one task type: `handler(request, ctx)` gets the decoded request message."""
        if isinstance(method, MethodDescriptor):
            method = Method(method)
        if not isinstance(method, Method):
            raise TypeError(f"method must be a taskwire Method or a MethodDescriptor, got {type(method).__name__}")
        if not callable(handler):
            raise TypeError(f"the handler of {method.path} is not callable: {handler!r}")
        self._methods[method.path] = method
        self._handlers[method.path] = handler

    def _check_handlers(self) -> None:
        missing = sorted(path for path in self._required if path not in self._handlers)
        if missing:
            raise ValueError(f"no handler for {', '.join(missing)}: pass one for every method of the service")
        if not self._handlers:
            raise ValueError("no task types: call add_service() or handle() before run()")

    # -- running -------------------------------------------------------------------

    def serve(self) -> None:
        """Runs until SIGTERM or SIGINT, then stops gracefully (see stop()). Raises WorkerRefused."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
            await self.run()

        asyncio.run(main())

    async def run(self) -> None:
        """Connects, serves and reconnects until stop(). Raises WorkerRefused if the server refuses the worker."""
        self._check_handlers()
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.connected = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="taskwire-handler")
        low, high = self._reconnect
        wait = low
        try:
            while not self._stopping:
                welcomed = False
                try:
                    welcomed = await self._session()
                except grpc.aio.AioRpcError as error:
                    if error.code() in REFUSED:
                        raise WorkerRefused(error.code(), error.details()) from None
                    if not self._stopping:
                        self.log.warning("disconnected: %s %s", error.code().name, error.details())
                except (grpc.RpcError, asyncio.InvalidStateError, grpc.aio.UsageError, OSError) as error:
                    if not self._stopping:
                        self.log.warning("disconnected: %r", error)
                if self._stopping:
                    break
                if welcomed:
                    wait = low
                try:  # back off with jitter, unless stop() comes first
                    await asyncio.wait_for(self._stopped.wait(), wait * (0.5 + random.random() / 2))
                except asyncio.TimeoutError:
                    pass
                wait = min(high, wait * BACKOFF_GROWTH)
            if self._stopper is not None:
                await self._stopper
        finally:
            for attempt in list(self._running.values()):
                attempt.cancel("worker exited")
            self._executor.shutdown(wait=False, cancel_futures=True)

    def stop(self, grace: Optional[float] = None) -> None:
        """Takes nothing new; running tasks get `grace` seconds (default: the worker's), then are handed back.

        Returns at once; run() returns when the worker is done. Safe from any thread.
        """
        loop = self._loop
        if loop is None:
            self._stopping = True
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            loop.call_soon_threadsafe(self.stop, grace)
            return
        if self._stopping:
            return
        self._stopping = True
        self._stopped.set()
        self.log.info("stopping: %d running, grace %.1f s", len(self._running), self.grace if grace is None else grace)
        self._stopper = loop.create_task(self._stop_after(self.grace if grace is None else grace))
        self._maybe_end()

    async def _stop_after(self, grace: float) -> None:
        deadline = self._loop.time() + grace
        while self._running and self._loop.time() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - self._loop.time())))
        for attempt in list(self._running.values()):
            self._release(attempt)
        self._maybe_end()
        deadline = self._loop.time() + ACK_WAIT_S
        while self._call is not None and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self._call is not None:
            self.log.warning("the server did not acknowledge the last results within %.0f s: closing", ACK_WAIT_S)
            self._call.cancel()

    # -- the session ---------------------------------------------------------------

    def _channel(self) -> grpc.aio.Channel:
        if self._credentials is not None:
            return grpc.aio.secure_channel(self.server, self._credentials, options=self._channel_options)
        return grpc.aio.insecure_channel(self.server, options=self._channel_options)

    async def _session(self) -> bool:
        self._session_no += 1
        session = self._session_no
        self._draining = False
        outbox = Outbox()
        hello = pb.Hello(
            worker_id=self.worker_id,
            task_types=list(self._handlers),
            slots=self.slots,
            labels=self.labels,
            version=self.version,
            protocol=pb.PROTOCOL_VERSION_1,
            resume=[pb.AttemptRef(task_id=t, attempt=a) for (t, a) in {*self._running, *self._unacked}],
        )
        welcomed = False
        tasks = []
        async with self._channel() as channel:
            connect = channel.stream_stream(
                CONNECT,
                request_serializer=pb.ConnectRequest.SerializeToString,
                response_deserializer=pb.ConnectResponse.FromString,
            )
            call = connect(metadata=self._metadata or None)
            try:
                try:
                    await call.write(pb.ConnectRequest(hello=hello))
                except asyncio.InvalidStateError:
                    pass  # the call has already ended: read() raises its status
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        return welcomed
                    if response.HasField("welcome"):
                        welcomed = True
                        self._call = call
                        self._outbox = outbox
                        self.connected.set()
                        tasks.append(asyncio.ensure_future(outbox.write(call, self.log)))
                        interval = response.welcome.heartbeat_interval.ToTimedelta().total_seconds() or 10.0
                        tasks.append(asyncio.ensure_future(outbox.heartbeat(interval)))
                        self._welcome(response.welcome, session)
                        self.log.info("connected as %s (session %s)", self.worker_id, response.welcome.session_id)
                    self._dispatch(response, session)
            finally:
                self._call = None
                self._outbox = None
                self.connected.clear()
                for task in tasks:
                    task.cancel()
                call.cancel()

    def _welcome(self, welcome: pb.Welcome, session: int) -> None:
        resumed = {(ref.task_id, ref.attempt) for ref in welcome.resumed}
        for key in resumed:
            if key in self._running:
                self._running[key].slot_session = session
        giving = not (self._stopping or self._draining)
        for key, request in self._unacked.items():
            again = pb.ConnectRequest()
            again.CopyFrom(request)
            # The new session counted a resumed attempt as holding a slot: its result frees it (§3).
            again.credit = 1 if key in resumed and giving else 0
            self._outbox.put(again)
        self._maybe_end()

    def _dispatch(self, response: pb.ConnectResponse, session: int) -> None:
        for assignment in response.assignments:
            self._start(assignment, session)
        for cancel in response.cancels:
            attempt = self._running.get((cancel.task_id, cancel.attempt))
            if attempt is not None:
                self.log.info("cancel %s attempt %d: %s", cancel.task_id, cancel.attempt, cancel.reason)
                attempt.cancel(cancel.reason or "cancelled by the server")
        for ref in response.acknowledged:
            self._unacked.pop((ref.task_id, ref.attempt), None)
        for rejection in response.rejections:
            self.log.warning("the server refused a result for %s attempt %d: %s", rejection.task_id, rejection.attempt, rejection.reason)
        if response.HasField("drain") and not self._draining:
            self._draining = True
            self.log.info("the server is draining: finishing %d running tasks, then reconnecting", len(self._running))
        self._maybe_end()

    def _maybe_end(self) -> None:
        """Half-closes the stream once a draining or stopping worker has nothing left to say."""
        if self._outbox is None or self._outbox.ended or not (self._draining or self._stopping):
            return
        if not self._running and not self._unacked:
            self._outbox.end()

    def _send(self, request: pb.ConnectRequest) -> None:
        if self._outbox is not None:
            self._outbox.put(request)

    # -- attempts --------------------------------------------------------------------

    def _start(self, assignment: pb.Assignment, session: int) -> None:
        key = (assignment.task_id, assignment.attempt)
        if key in self._running:
            return
        handler = self._handlers.get(assignment.type)
        deadline = assignment.deadline.ToDatetime().replace(tzinfo=timezone.utc) if assignment.HasField("deadline") else None
        ctx = Context(
            task_id=assignment.task_id,
            attempt=assignment.attempt,
            max_attempts=assignment.max_attempts,
            type=assignment.type,
            queue=assignment.queue,
            deadline=deadline,
            metadata=assignment.metadata,
            logger=self.log,
            report=self._progress,
        )
        is_async = handler is not None and (inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(getattr(handler, "__call__", None)))
        attempt = _Attempt(key, ctx, is_async, session)
        self._running[key] = attempt
        if self._stopping:  # assigned while stopping: hand it back unrun
            self._release(attempt)
            return
        attempt.task = self._loop.create_task(self._run_attempt(attempt, assignment, handler))

    async def _run_attempt(self, attempt: _Attempt, assignment: pb.Assignment, handler: Optional[Handler]) -> None:
        ctx = attempt.ctx
        method = self._methods.get(assignment.type)
        timer = None
        if ctx.deadline is not None:
            delay = (ctx.deadline - datetime.now(timezone.utc)).total_seconds()
            timer = self._loop.call_later(max(0.0, delay), self._expire, attempt)
        result: Optional[Tuple[str, Any]] = None
        try:
            if method is None or handler is None:
                raise TaskError(f"this worker has no handler for {assignment.type}", errors.UNIMPLEMENTED, retryable=True)
            try:
                request = method.unpack_input(assignment.input)
            except Exception as error:  # noqa: BLE001 - an input that does not decode never will
                raise TaskError(str(error), errors.INVALID_ARGUMENT, retryable=False) from None
            if attempt.is_async:
                response = await handler(request, ctx)
            else:
                response = await self._loop.run_in_executor(self._executor, handler, request, ctx)
                if inspect.isawaitable(response):  # a plain callable that returned a coroutine
                    response = await response
            if attempt.expired:
                result = ("fail", pb.Fail(message="execution deadline passed", code=errors.DEADLINE_EXCEEDED, retryable=True))
            elif not ctx.cancelled:
                try:
                    output = method.pack_output(response)
                except TypeError as error:
                    raise TaskError(str(error), errors.INTERNAL, retryable=False) from None
                result = ("complete", pb.Complete(output=output))
        except asyncio.CancelledError:
            if attempt.expired:
                result = ("fail", pb.Fail(message="execution deadline passed", code=errors.DEADLINE_EXCEEDED, retryable=True))
            elif not ctx.cancelled:
                raise
        except TaskError as error:
            if not ctx.cancelled or attempt.expired:
                result = ("fail", pb.Fail(message=str(error)[:4096], code=error.code, retryable=error.retryable))
        except Exception as error:  # noqa: BLE001 - every failure is reported to the server
            if attempt.expired:
                result = ("fail", pb.Fail(message="execution deadline passed", code=errors.DEADLINE_EXCEEDED, retryable=True))
            elif not ctx.cancelled:
                ctx.logger.warning("handler failed: %s: %s", type(error).__name__, error)
                result = ("fail", pb.Fail(message=f"{type(error).__name__}: {error}"[:4096], code=errors.UNKNOWN, retryable=True))
        finally:
            if timer is not None:
                timer.cancel()
            self._finish(attempt, result)

    def _expire(self, attempt: _Attempt) -> None:
        attempt.expired = True
        attempt.cancel("execution deadline passed")

    def _finish(self, attempt: _Attempt, result: Optional[Tuple[str, Any]]) -> None:
        if self._running.get(attempt.key) is not attempt:
            return  # released on stop: already answered for
        del self._running[attempt.key]
        task_id, number = attempt.key
        request = pb.ConnectRequest()
        if result is not None:
            kind, item = result
            item.task_id, item.attempt = task_id, number
            (request.completes if kind == "complete" else request.fails).append(item)
            self._unacked[attempt.key] = request
        if attempt.slot_session == self._session_no and not (self._stopping or self._draining):
            request = _with_credit(request, 1)
        if result is not None or request.credit:
            self._send(request)
        self._maybe_end()

    def _release(self, attempt: _Attempt) -> None:
        """Hands an attempt back unfinished: queued again at once, not a failure (§4, §10)."""
        self._running.pop(attempt.key, None)
        attempt.released = True
        attempt.cancel("worker stopping")
        request = pb.ConnectRequest(releases=[pb.AttemptRef(task_id=attempt.key[0], attempt=attempt.key[1])])
        self._unacked[attempt.key] = request
        self._send(request)

    def _progress(self, task_id: str, attempt: int, percent: float, message: str) -> None:
        request = pb.ConnectRequest(progress=[pb.Progress(task_id=task_id, attempt=attempt, percent=percent, message=message[:1024])])
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._send(request)
        else:
            loop.call_soon_threadsafe(self._send, request)


def _with_credit(request: pb.ConnectRequest, credit: int) -> pb.ConnectRequest:
    copy = pb.ConnectRequest()
    copy.CopyFrom(request)
    copy.credit = credit
    return copy
