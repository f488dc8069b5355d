"""The bounded executor that runs ``session.run`` off the event loop.

One per process, owned by the runtime. Its worker count times ORT's intra-op threads is sized to the
cores (ModelSettings.ort_threads), so concurrent runs do not oversubscribe the CPU. Submissions beyond
``max_pending`` are refused with RESOURCE_EXHAUSTED instead of piling up unboundedly.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from maas_runtime.errors import Overloaded

T = TypeVar("T")


class BoundedExecutor:
    def __init__(self, workers: int, max_pending: int | None = None, name: str = "onnx") -> None:
        self.workers = workers
        self.max_pending = max_pending or workers * 64
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker; RESOURCE_EXHAUSTED when ``max_pending`` runs are already pending."""
        if self._pending >= self.max_pending:
            raise Overloaded(f"inference executor full ({self._pending} pending)", retry_after_s=0.05)
        return await self.run_scheduled(fn, *args)

    async def run_scheduled(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker, never refused: for callers that bound themselves (a generation engine's
        scheduler has one run in flight at a time), whose refusal would fail every request they carry."""
        self._pending += 1
        try:
            ctx = contextvars.copy_context()  # keeps the request id in worker-thread logs
            call = functools.partial(ctx.run, fn, *args)
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            self._pending -= 1

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
