"""Errors a handler raises, and errors the worker and client report."""

from typing import Optional, Union

import grpc

# google.rpc.Code values used by the runtime.
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
UNIMPLEMENTED = 12
INTERNAL = 13

Code = Union[int, grpc.StatusCode]


def code_number(code: Code) -> int:
    """A google.rpc.Code number from an int or a grpc.StatusCode."""
    if isinstance(code, grpc.StatusCode):
        return code.value[0]
    if isinstance(code, int) and 0 <= code <= 16:
        return code
    raise ValueError(f"code must be a grpc.StatusCode or an int 0..16 (google.rpc.Code), got {code!r}")


class TaskError(Exception):
    """Raised by a handler to fail an attempt with a code.

    retryable=False fails the task at once; otherwise it is retried after the
    task's backoff until its attempts run out. Any other exception fails the
    attempt as a retryable UNKNOWN.
    """

    def __init__(self, message: str, code: Code = UNKNOWN, retryable: bool = True):
        super().__init__(message)
        self.code = code_number(code)
        self.retryable = retryable


class WorkerRefused(Exception):
    """The server refused the worker's Hello; reconnecting would be refused again."""

    def __init__(self, code: grpc.StatusCode, details: Optional[str]):
        super().__init__(f"the server refused this worker ({code.name}): {details}")
        self.code = code
        self.details = details


class TaskFailed(Exception):
    """A task ended FAILED: `task.errors[-1]` holds the last attempt's error."""

    def __init__(self, task):
        last = task.errors[-1] if task.errors else None
        message = last.message if last is not None else "no error recorded"
        super().__init__(f"task {task.id} failed: {message}")
        self.task = task
        self.code = last.code if last is not None else UNKNOWN
        self.message = message


class TaskCancelled(Exception):
    """A task ended CANCELLED."""

    def __init__(self, task):
        super().__init__(f"task {task.id} was cancelled: {task.cancel_reason or 'no reason given'}")
        self.task = task
        self.reason = task.cancel_reason
