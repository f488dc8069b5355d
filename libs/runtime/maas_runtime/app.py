"""The lifecycle every model service shares: load, bind, warm up, serve until SIGTERM, stop.

A service subclasses ``ServiceApp`` and writes only ``load`` (models → pipeline → servicer registration);
its pipeline offers ``async warmup()`` and ``async close()``.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

from maas_runtime.executor import BoundedExecutor
from maas_runtime.server import ModelServer
from maas_runtime.settings import ModelSettings, ServerSettings


class Pipeline(Protocol):
    async def warmup(self) -> None: ...

    async def close(self) -> None: ...


P = TypeVar("P", bound=Pipeline)


class ServiceApp(Generic[P]):
    """The server and its pipeline: ``await app.start()`` binds and warms up, ``await app.stop()``."""

    name = "service"

    def __init__(self, settings: Any) -> None:
        assert isinstance(settings, ServerSettings) and isinstance(settings, ModelSettings)
        self.settings = settings
        self.executor = BoundedExecutor(settings.executor_workers)
        self.server = ModelServer(settings, name=self.name)
        self.pipeline: P | None = None

    def load(self) -> P:
        """Load the models, build the pipeline, register the servicer and the models on ``self.server``."""
        raise NotImplementedError

    async def warmup(self) -> None:
        assert self.pipeline is not None
        await self.pipeline.warmup()

    async def start(self) -> int:
        """For tests and embedding: load, bind, warm, mark SERVING; returns the bound port."""
        self.load()
        port = await self.server.start()
        await self.warmup()
        await self.server.set_ready()
        return port

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.close()
        self.executor.shutdown()

    async def stop(self, grace: float | None = 0) -> None:
        await self.server.stop(grace)
        await self.close()

    async def run(self) -> None:
        """Bind first (health answers NOT_SERVING while the models warm up), serve until SIGTERM."""
        self.load()
        await self.server.run(load=self.warmup, on_stop=self.close)
