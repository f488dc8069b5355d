"""Wires settings, model, pipeline and servicer into a server (used by __main__ and the tests)."""

from __future__ import annotations

from maas.textgen.v1 import textgen_pb2_grpc
from maas_runtime.executor import BoundedExecutor
from maas_runtime.onnx_model import OnnxModel
from maas_runtime.server import ModelServer
from text_generator.pipeline import TextGenPipeline
from text_generator.servicer import TextGeneratorServicer
from text_generator.settings import TextGenSettings

SERVICE = "maas.textgen.v1.TextGenerator"


class TextGenApp:
    """The server and its pipeline: ``await app.start()`` binds and warms up, ``await app.stop()``."""

    def __init__(self, settings: TextGenSettings) -> None:
        self.settings = settings
        self.executor = BoundedExecutor(settings.executor_workers)
        self.server = ModelServer(settings, name="text-generator")
        self.pipeline: TextGenPipeline | None = None

    def load(self) -> TextGenPipeline:
        s = self.settings
        model = OnnxModel.load(s.model_repository, s.served_model, s, self.executor)
        self.pipeline = TextGenPipeline(model, s)
        self.server.add_service(textgen_pb2_grpc.add_TextGeneratorServicer_to_server,
                                TextGeneratorServicer(self.pipeline), SERVICE)
        self.server.add_models([model])
        return self.pipeline

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
        """Bind first (health answers NOT_SERVING while the model loads), serve until SIGTERM."""
        self.load()
        await self.server.run(load=self.warmup, on_stop=self.close)
