"""Wires settings, model, pipeline and servicer into a server (used by __main__ and the tests)."""

from __future__ import annotations

from maas.music.v1 import generator_pb2_grpc
from maas_runtime.app import ServiceApp
from maas_runtime.onnx_model import OnnxModel
from music_generator.pipeline import MusicPipeline
from music_generator.servicer import MusicGeneratorServicer
from music_generator.settings import MusicGenSettings

SERVICE = "maas.music.v1.MusicGenerator"


class MusicGenApp(ServiceApp[MusicPipeline]):
    name = "music-generator"
    settings: MusicGenSettings

    def load(self) -> MusicPipeline:
        s = self.settings
        model = OnnxModel.load(s.model_repository, s.served_model(), s, self.executor)
        self.pipeline = MusicPipeline(model, s)
        self.server.add_service(generator_pb2_grpc.add_MusicGeneratorServicer_to_server,
                                MusicGeneratorServicer(self.pipeline), SERVICE)
        self.server.add_models([model])
        return self.pipeline
