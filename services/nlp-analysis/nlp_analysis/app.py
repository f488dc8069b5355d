"""Wires settings, models, pipeline and servicer into a server (used by __main__ and the tests)."""

from __future__ import annotations

from maas.nlp.v1 import nlp_pb2_grpc
from maas_runtime.executor import BoundedExecutor
from maas_runtime.onnx_model import OnnxModel
from maas_runtime.server import ModelServer
from nlp_analysis.pipeline import NlpPipeline
from nlp_analysis.servicer import NlpAnalysisServicer
from nlp_analysis.settings import NlpSettings

SERVICE = "maas.nlp.v1.NlpAnalysis"


class NlpApp:
    """The server and its pipeline: ``await app.start()`` binds and warms up, ``await app.stop()``."""

    def __init__(self, settings: NlpSettings) -> None:
        self.settings = settings
        self.executor = BoundedExecutor(settings.executor_workers)
        self.server = ModelServer(settings, name="nlp-analysis")
        self.pipeline: NlpPipeline | None = None

    def load(self) -> NlpPipeline:
        s = self.settings
        models = [OnnxModel.load(s.model_repository, name, s, self.executor)
                  for name in (s.encoder_model, s.sentiment_model, s.labels_model, s.ner_model)]
        self.pipeline = NlpPipeline(*models, settings=s)
        self.server.add_service(nlp_pb2_grpc.add_NlpAnalysisServicer_to_server,
                                NlpAnalysisServicer(self.pipeline), SERVICE)
        self.server.add_models(self.pipeline.models)
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
        """Bind first (health answers NOT_SERVING while models load), serve until SIGTERM."""
        self.load()
        await self.server.run(load=self.warmup, on_stop=self.close)
