"""Micro-batching per model, in MLServer's shape: a queue, one future per item, split the batched
output back, fan a failure out to every waiter.

Callers submit the items of one request together; the worker gathers items from any number of
requests until ``max_batch_size`` or ``max_delay`` since the first waiting item, then runs one batch.
The queue is bounded (in items): beyond it, ``Overloaded`` (RESOURCE_EXHAUSTED with a retry hint).
Up to ``max_concurrent_batches`` batches run at once so every executor worker stays busy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

from maas_runtime import metrics
from maas_runtime.errors import InvalidArgument, Overloaded

I = TypeVar("I")
O = TypeVar("O")

log = logging.getLogger("maas.batcher")


class MicroBatcher(Generic[I, O]):
    def __init__(self, name: str, process: Callable[[list[I]], Awaitable[Sequence[O]]], *,
                 max_batch_size: int = 32, max_delay_s: float = 0.005, max_queue_size: int = 1024,
                 max_concurrent_batches: int = 2, max_queue_wait_s: float = 0.0) -> None:
        if max_batch_size < 1 or max_queue_size < 1 or max_concurrent_batches < 1:
            raise ValueError("batch size, queue size and concurrency must be >= 1")
        self.name = name
        self._process = process
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.max_queue_size = max_queue_size
        self._queue: deque[tuple[I, asyncio.Future[O], float]] = deque()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(max_concurrent_batches)
        self._worker: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._depth = metrics.QUEUE_DEPTH.labels(name)
        # admission by expected wait (0: by queue length only): the batches ahead of a request, at the time a
        # batch has taken lately, over the batches that run at once
        self.max_queue_wait_s = max_queue_wait_s
        self._batch_s = 0.02  # moving average of a batch's run time (the first one measured replaces this guess)
        self._timed = 0
        self.max_concurrent_batches = max_concurrent_batches

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, items: Sequence[I]) -> list[O]:
        """Queue the items of one request and wait for their results, in order."""
        if not items:
            return []
        if len(items) > self.max_queue_size:  # never fits, however long the caller waits: no retry hint
            raise InvalidArgument("request", f"{len(items)} items for model {self.name}; it queues at most "
                                             f"{self.max_queue_size}")
        if len(self._queue) + len(items) > self.max_queue_size:
            metrics.QUEUE_REJECTED.labels(self.name).inc(len(items))
            raise Overloaded(f"model {self.name} queue is full ({len(self._queue)} items waiting)",
                             max(0.05, self.expected_wait(0)))
        if self.max_queue_wait_s > 0 and self._queue:
            wait = self.expected_wait(len(items))
            if wait > self.max_queue_wait_s:
                metrics.QUEUE_REJECTED.labels(self.name).inc(len(items))
                raise Overloaded(f"model {self.name}: a new request would wait ~{wait:.2f}s (at most "
                                 f"{self.max_queue_wait_s:g}s are queued)",
                                 round(max(0.05, wait - self.max_queue_wait_s), 3))
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        futures = [loop.create_future() for _ in items]
        self._queue.extend((item, fut, now) for item, fut in zip(items, futures))
        self._depth.set(len(self._queue))
        self._arrived.set()
        try:
            return list(await asyncio.gather(*futures))
        except asyncio.CancelledError:
            for fut in futures:  # the worker skips cancelled items: a dropped call costs nothing more
                fut.cancel()
            raise

    def expected_wait(self, items: int) -> float:
        """Seconds until the last of ``items`` more would be done: the batches ahead and its own, at the time a
        batch has taken lately, ``max_concurrent_batches`` at a time."""
        batches = math.ceil((len(self._queue) + items) / self.max_batch_size)
        return batches * self._batch_s / self.max_concurrent_batches

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def _loop(self) -> None:
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            await self._slots.acquire()
            # Wait for a full batch or the delay measured from the oldest waiting item.
            deadline = self._queue[0][2] + self.max_delay_s if self._queue else time.monotonic()
            while len(self._queue) < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch: list[tuple[I, asyncio.Future[O]]] = []
            while self._queue and len(batch) < self.max_batch_size:
                item, fut, _ = self._queue.popleft()
                if not fut.cancelled():
                    batch.append((item, fut))
            self._depth.set(len(self._queue))
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[I, asyncio.Future[O]]]) -> None:
        started = time.monotonic()
        try:
            outputs = await self._process([item for item, _ in batch])
            elapsed = time.monotonic() - started
            self._batch_s = elapsed if not self._timed else 0.8 * self._batch_s + 0.2 * elapsed
            self._timed += 1
            if len(outputs) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} produced {len(outputs)} outputs")
        except BaseException as exc:  # noqa: BLE001 - fanned out to every waiter
            if not isinstance(exc, Exception):
                exc = RuntimeError(f"batch interrupted: {exc!r}")
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
        else:
            for (_, fut), out in zip(batch, outputs):
                if not fut.done():
                    fut.set_result(out)
        finally:
            self._slots.release()

    async def close(self) -> None:
        if self._worker:
            self._worker.cancel()
        for task in list(self._running):
            await asyncio.gather(task, return_exceptions=True)
        while self._queue:
            _, fut, _ = self._queue.popleft()
            if not fut.done():
                fut.cancel()
