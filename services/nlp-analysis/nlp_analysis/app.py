"""Wires settings, models, pipeline and servicer into a server (used by __main__ and the tests)."""

from __future__ import annotations

from maas.nlp.v1 import nlp_pb2_grpc
from maas_runtime.app import ServiceApp
from maas_runtime.onnx_model import OnnxModel
from nlp_analysis.pipeline import NlpPipeline
from nlp_analysis.servicer import NlpAnalysisServicer
from nlp_analysis.settings import NlpSettings

SERVICE = "maas.nlp.v1.NlpAnalysis"


class NlpApp(ServiceApp[NlpPipeline]):
    name = "nlp-analysis"
    settings: NlpSettings

    def load(self) -> NlpPipeline:
        s = self.settings
        models = [OnnxModel.load(s.model_repository, name, s, self.executor)
                  for name in (s.encoder_model, s.sentiment_model, s.labels_model, s.ner_model)]
        self.pipeline = NlpPipeline(*models, settings=s)
        self.server.add_service(nlp_pb2_grpc.add_NlpAnalysisServicer_to_server,
                                NlpAnalysisServicer(self.pipeline), SERVICE)
        self.server.add_models(self.pipeline.models)
        return self.pipeline
