"""What a worker sends on its Connect stream, and the stream's only writer."""

import asyncio
import logging

import grpc

from .v1 import worker_service_pb2 as pb

# Most items merged into one ConnectRequest.
BATCH = 256

_END = object()  # in the queue: half-close the stream


class Outbox:
    """An unbounded queue of ConnectRequests, written by one task that merges
    what is queued into one message: at low load single items, under load batches."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self.ended = False

    def put(self, request: pb.ConnectRequest) -> None:
        if not self.ended:
            self._queue.put_nowait(request)

    def end(self) -> None:
        """Half-closes the stream once what is queued is written."""
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(_END)

    async def write(self, call, log: logging.Logger) -> None:
        try:
            await self._write_batches(call)
        except (grpc.RpcError, asyncio.InvalidStateError, grpc.aio.UsageError) as error:
            # The stream is gone; the reader sees why and the session ends there.
            log.debug("write failed: %s", error)

    async def _write_batches(self, call) -> None:
        queue = self._queue
        while True:
            item = await queue.get()
            end = item is _END
            batch = pb.ConnectRequest()
            credit = 0
            count = 0
            while not end:
                credit += item.credit  # MergeFrom would keep the last credit, not the sum
                batch.MergeFrom(item)
                count += 1
                if queue.empty() or count >= BATCH:
                    break
                item = queue.get_nowait()
                end = item is _END
            if count:
                batch.credit = credit
                await call.write(batch)
            if end:
                await call.done_writing()
                return

    async def heartbeat(self, interval: float) -> None:
        """Something at least every `interval` seconds (PROTOCOL.md §5)."""
        while True:
            await asyncio.sleep(interval * 0.8)  # a little early, so a busy loop still makes the interval
            self.put(pb.ConnectRequest(heartbeat=True))
