"""A small taskwire worker runtime for Python, over the WorkerService.Connect stream.

It speaks the protocol of docs/PROTOCOL.md: Hello with the task types and
slots, credit returned as slots free up, heartbeats, results kept until the
server acknowledges them, Cancel reaching the handler through a
threading.Event, Drain (finish what runs, take nothing new, reconnect), a
graceful stop (running tasks get a grace period, then are released), and
reconnection with exponential backoff and jitter.

    worker = Worker("127.0.0.1:50051", worker_id="py-1", slots=4)
    worker.handle("/demo.v1.DemoService/Echo", demo_pb2.EchoRequest, echo)
    worker.run()  # until stop(); returns once every task is finished or released

A handler is handler(request, ctx) -> response message; ctx.cancelled is an
Event set when the attempt is cancelled or times out, ctx.progress(p, msg)
reports progress. Raise TaskError(message, code, retryable) to classify a
failure; any other exception is a retryable UNKNOWN.
"""

import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2

from taskwire.v1 import worker_service_pb2 as pb
from taskwire.v1 import worker_service_pb2_grpc as pb_grpc

log = logging.getLogger("taskwire.worker")

TYPE_PREFIX = "type.googleapis.com/"

# A Hello refused for these reasons will be refused again: no point reconnecting.
REFUSED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}


class TaskError(Exception):
    """A failure with a gRPC status code; retryable=False fails the task at once."""

    def __init__(self, message, code=2, retryable=True):
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass
class Context:
    task_id: str
    attempt: int
    type: str
    cancelled: threading.Event
    _send: object = field(repr=False)

    def progress(self, percent, message=""):
        self._send(pb.ConnectRequest(progress=[pb.Progress(task_id=self.task_id, attempt=self.attempt, percent=percent, message=message)]))


class Worker:
    def __init__(self, target, worker_id, slots=4, reconnect_min=0.1, reconnect_max=5.0):
        self.target = target
        self.worker_id = worker_id
        self.slots = slots
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._handlers = {}
        self._running = {}  # (task_id, attempt) -> Event
        self._unacknowledged = {}  # (task_id, attempt) -> ConnectRequest
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=slots)
        self._outbox = None
        self._stop = threading.Event()
        self._released = set()  # (task_id, attempt) handed back on stop
        self._draining = False
        self.connected = threading.Event()

    def handle(self, task_type, request_class, handler):
        self._handlers[task_type] = (request_class, handler)

    def stop(self, grace=30.0):
        """Takes nothing new; running tasks get `grace` seconds, then are released. Returns at once."""
        if self._stop.is_set():
            return
        self._stop.set()
        threading.Thread(target=self._stop_after, args=(grace,), daemon=True).start()

    def _stop_after(self, grace):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    break
            time.sleep(0.05)
        with self._lock:
            for key, cancelled in self._running.items():
                self._released.add(key)
                cancelled.set()  # the handler sees ctx.cancelled and returns; the attempt is released
        self._end_if_idle()

    def _end_if_idle(self):
        """Ends the stream once nothing runs, when stopping or draining."""
        with self._lock:
            idle = not self._running
        if idle and (self._stop.is_set() or self._draining):
            self._send(None)

    # -- sending --------------------------------------------------------------

    def _send(self, request):
        outbox = self._outbox
        if outbox is not None:
            outbox.put(request)

    def _send_result(self, key, request):
        with self._lock:
            self._unacknowledged[key] = request
        self._send(request)

    def _requests(self, outbox, hello):
        yield hello
        while True:
            item = outbox.get()
            if item is None:
                return
            yield item

    # -- running tasks ----------------------------------------------------------

    def _run(self, assignment):
        key = (assignment.task_id, assignment.attempt)
        cancelled = self._running[key]
        deadline = assignment.deadline.ToDatetime().timestamp() if assignment.HasField("deadline") else None
        timer = None
        if deadline is not None:
            timer = threading.Timer(max(0.0, deadline - time.time()), cancelled.set)
            timer.start()
        released = False
        try:
            request_class, handler = self._handlers[assignment.type]
            expected = TYPE_PREFIX + request_class.DESCRIPTOR.full_name
            if assignment.input.type_url != expected:
                raise TaskError(f"input has type {assignment.input.type_url}, expected {expected}", code=3, retryable=False)
            request = request_class()
            assignment.input.Unpack(request)
            ctx = Context(assignment.task_id, assignment.attempt, assignment.type, cancelled, self._send)
            response = handler(request, ctx)
            if key in self._released:
                released = True
                return
            if cancelled.is_set():
                return  # the server ended this attempt; its result is not wanted
            output = any_pb2.Any()
            output.Pack(response, type_url_prefix="type.googleapis.com")
            self._send_result(key, pb.ConnectRequest(completes=[pb.Complete(task_id=key[0], attempt=key[1], output=output)]))
        except Exception as error:  # noqa: BLE001 - every failure is reported to the server
            if key in self._released:
                released = True
                return
            if cancelled.is_set() and deadline is None:
                return
            code = getattr(error, "code", 2)
            retryable = getattr(error, "retryable", True)
            if cancelled.is_set():
                code, retryable = 4, True  # DEADLINE_EXCEEDED
            self._send_result(key, pb.ConnectRequest(fails=[pb.Fail(task_id=key[0], attempt=key[1], message=str(error), code=code, retryable=retryable)]))
        finally:
            if timer is not None:
                timer.cancel()
            if released:
                # Handed back unfinished: queued again at once, not a failure.
                self._send_result(key, pb.ConnectRequest(releases=[pb.AttemptRef(task_id=key[0], attempt=key[1])]))
            with self._lock:
                self._running.pop(key, None)
            if not self._stop.is_set() and not self._draining:
                self._send(pb.ConnectRequest(credit=1))  # the slot is free again
            self._end_if_idle()

    # -- the session ----------------------------------------------------------------

    def _session(self):
        self._draining = False
        outbox = queue.Queue()
        with self._lock:
            resume = [pb.AttemptRef(task_id=t, attempt=a) for (t, a) in set(self._running) | set(self._unacknowledged)]
        hello = pb.ConnectRequest(
            hello=pb.Hello(
                worker_id=self.worker_id,
                task_types=list(self._handlers),
                slots=self.slots,
                version="python-example",
                protocol=pb.PROTOCOL_VERSION_1,
                resume=resume,
            )
        )
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.WorkerServiceStub(channel)
            responses = stub.Connect(self._requests(outbox, hello))
            heartbeat = None
            try:
                for response in responses:
                    if response.HasField("welcome"):
                        self._outbox = outbox
                        self.connected.set()
                        with self._lock:
                            for request in self._unacknowledged.values():
                                outbox.put(request)
                        interval = response.welcome.heartbeat_interval.ToTimedelta().total_seconds() or 10
                        heartbeat = _Repeat(interval, lambda: outbox.put(pb.ConnectRequest(heartbeat=True)))
                        log.info("connected as %s (session %s)", self.worker_id, response.welcome.session_id)
                    for assignment in response.assignments:
                        with self._lock:
                            self._running[(assignment.task_id, assignment.attempt)] = threading.Event()
                        self._pool.submit(self._run, assignment)
                    for cancel in response.cancels:
                        with self._lock:
                            event = self._running.get((cancel.task_id, cancel.attempt))
                        if event is not None:
                            event.set()
                    for ref in response.acknowledged:
                        with self._lock:
                            self._unacknowledged.pop((ref.task_id, ref.attempt), None)
                    for rejection in response.rejections:
                        log.warning("the server refused a result for %s attempt %d: %s", rejection.task_id, rejection.attempt, rejection.reason)
                    if response.HasField("drain") and not self._draining:
                        log.info("server is draining: finishing running tasks, then reconnecting")
                        self._draining = True
                        self._end_if_idle()
                    if self._stop.is_set():
                        self._end_if_idle()
            finally:
                self._outbox = None
                self.connected.clear()
                if heartbeat is not None:
                    heartbeat.cancel()
                outbox.put(None)

    def run(self):
        wait = self.reconnect_min
        while not self._stop.is_set():
            try:
                self._session()
                wait = self.reconnect_min
            except grpc.RpcError as error:
                if self._stop.is_set():
                    break
                log.warning("disconnected: %s", error.code())
                if error.code() in REFUSED:
                    raise  # the server will refuse this worker again: say why and exit
            if self._stop.is_set():
                break
            self._stop.wait(wait * (0.5 + random.random() / 2))
            wait = min(self.reconnect_max, wait * 2)
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Repeat:
    """Calls fn every interval seconds on a daemon thread until cancelled."""

    def __init__(self, interval, fn):
        self._stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(interval, fn), daemon=True)
        thread.start()

    def _loop(self, interval, fn):
        while not self._stop.wait(interval):
            fn()

    def cancel(self):
        self._stop.set()
