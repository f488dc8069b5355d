"""Wires settings, model, pipeline and servicer into a server (used by __main__ and the tests)."""

from __future__ import annotations

from maas.textgen.v1 import textgen_pb2_grpc
from maas_runtime.app import ServiceApp
from maas_runtime.onnx_model import OnnxModel
from text_generator.pipeline import TextGenPipeline
from text_generator.servicer import TextGeneratorServicer
from text_generator.settings import TextGenSettings

SERVICE = "maas.textgen.v1.TextGenerator"


class TextGenApp(ServiceApp[TextGenPipeline]):
    name = "text-generator"
    settings: TextGenSettings

    def load(self) -> TextGenPipeline:
        s = self.settings
        model = OnnxModel.load(s.model_repository, s.served_model(), s, self.executor)
        self.pipeline = TextGenPipeline(model, s)
        self.server.add_service(textgen_pb2_grpc.add_TextGeneratorServicer_to_server,
                                TextGeneratorServicer(self.pipeline), SERVICE)
        self.server.add_models([model])
        return self.pipeline
