"""Wires settings, the scorer model, the store, the nlp-analysis client, pipeline and servicer into a server
(used by __main__ and the tests)."""

from __future__ import annotations

from maas.music.v1 import recommender_pb2_grpc
from maas_runtime.app import ServiceApp
from maas_runtime.onnx_model import OnnxModel
from music_recommender.nlp_client import NlpEmbedder
from music_recommender.pipeline import RecommenderPipeline
from music_recommender.servicer import MusicRecommenderServicer
from music_recommender.settings import RecommenderSettings
from music_recommender.store import open_store

SERVICE = "maas.music.v1.MusicRecommender"


class RecommenderApp(ServiceApp[RecommenderPipeline]):
    name = "music-recommender"
    settings: RecommenderSettings

    def load(self) -> RecommenderPipeline:
        s = self.settings
        scorer = OnnxModel.load(s.model_repository, s.model_name, s, self.executor)
        self.embedder = NlpEmbedder(s.nlp_addr, s.nlp_timeout_s,
                                    s.internal_token.get_secret_value() if s.internal_token else None)
        self.pipeline = RecommenderPipeline(scorer, open_store(s.store_url), self.embedder, s)
        self.server.add_service(recommender_pb2_grpc.add_MusicRecommenderServicer_to_server,
                                MusicRecommenderServicer(self.pipeline), SERVICE)
        self.server.add_models(self.pipeline.models)
        return self.pipeline

    async def close(self) -> None:
        await super().close()
        await self.embedder.close()
