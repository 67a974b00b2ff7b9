"""What a handler knows about the attempt it runs, and how it talks back."""

import logging
import threading
from datetime import datetime
from typing import Callable, Mapping, Optional


class Context:
    """The attempt a handler runs.

    An async handler is cancelled (asyncio.CancelledError) when the attempt is
    cancelled, times out, or is handed back on stop. A sync handler runs in a
    thread and should poll `cancelled` or wait on `wait_cancelled(seconds)`.
    """

    def __init__(
        self,
        task_id: str,
        attempt: int,
        max_attempts: int,
        type: str,
        queue: str,
        deadline: Optional[datetime],
        metadata: Mapping[str, str],
        logger: logging.Logger,
        report: Callable[[str, int, float, str], None],
    ):
        self.task_id = task_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.type = type
        self.queue = queue
        #: When the attempt must be over (timezone-aware UTC), or None.
        self.deadline = deadline
        #: The task's labels and trace context.
        self.metadata = dict(metadata)
        #: The worker's logger, each line prefixed with "[task_id#attempt]" (also in `extra`).
        self.logger: logging.LoggerAdapter = _TaskLogger(logger, {"task_id": task_id, "attempt": attempt})
        self.cancel_reason: Optional[str] = None
        self._cancelled = threading.Event()
        self._report = report

    @property
    def cancelled(self) -> bool:
        """True once the attempt is cancelled, timed out, or handed back."""
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """For sync handlers: blocks up to `timeout` seconds; True if the attempt was cancelled."""
        return self._cancelled.wait(timeout)

    def progress(self, percent: float, message: str = "") -> None:
        """Reports progress (0..100) to watchers; safe from any thread. Best effort."""
        self._report(self.task_id, self.attempt, float(percent), message)

    def _cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self._cancelled.set()


class _TaskLogger(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {}).update(self.extra)
        return f"[{self.extra['task_id']}#{self.extra['attempt']}] {msg}", kwargs
