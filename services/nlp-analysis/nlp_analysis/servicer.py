"""Protobuf <-> domain types for maas.nlp.v1.NlpAnalysis, and nothing else."""

from __future__ import annotations

import grpc

from maas.common.v1 import common_pb2
from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas_runtime.rpc import model_info
from nlp_analysis.pipeline import NlpPipeline

_SENTIMENT = {"negative": nlp_pb2.SENTIMENT_NEGATIVE, "neutral": nlp_pb2.SENTIMENT_NEUTRAL,
              "positive": nlp_pb2.SENTIMENT_POSITIVE}


class NlpAnalysisServicer(nlp_pb2_grpc.NlpAnalysisServicer):
    def __init__(self, pipeline: NlpPipeline) -> None:
        self.pipeline = pipeline

    async def AnalyzeSentiment(self, request: nlp_pb2.AnalyzeSentimentRequest,
                               context: grpc.aio.ServicerContext) -> nlp_pb2.AnalyzeSentimentResponse:
        results = await self.pipeline.sentiment(list(request.texts))
        return nlp_pb2.AnalyzeSentimentResponse(
            results=[nlp_pb2.SentimentResult(label=_SENTIMENT[r.label], negative=r.negative, neutral=r.neutral,
                                             positive=r.positive) for r in results],
            model=model_info(self.pipeline.sentiment_model.model))

    async def ClassifyText(self, request: nlp_pb2.ClassifyTextRequest,
                           context: grpc.aio.ServicerContext) -> nlp_pb2.ClassifyTextResponse:
        results = await self.pipeline.classify(list(request.texts), list(request.candidate_labels),
                                               request.multi_label, request.hypothesis_template,
                                               list(request.label_groups))
        model = self.pipeline.labels if not request.candidate_labels else self.pipeline.encoder.model
        return nlp_pb2.ClassifyTextResponse(
            results=[nlp_pb2.Classification(scores=[nlp_pb2.LabelScore(label=s.label, score=s.score, group=s.group)
                                                    for s in row]) for row in results],
            model=model_info(model))

    async def ExtractEntities(self, request: nlp_pb2.ExtractEntitiesRequest,
                              context: grpc.aio.ServicerContext) -> nlp_pb2.ExtractEntitiesResponse:
        results = await self.pipeline.entities(list(request.texts))
        return nlp_pb2.ExtractEntitiesResponse(
            results=[nlp_pb2.EntityList(entities=[
                nlp_pb2.Entity(label=e.label, span=common_pb2.TextSpan(start=e.start, end=e.end), text=e.text,
                               score=e.score) for e in row]) for row in results],
            model=model_info(self.pipeline.ner.model))

    async def EmbedText(self, request: nlp_pb2.EmbedTextRequest,
                        context: grpc.aio.ServicerContext) -> nlp_pb2.EmbedTextResponse:
        vectors = await self.pipeline.embed(list(request.texts))
        return nlp_pb2.EmbedTextResponse(embeddings=[nlp_pb2.Embedding(values=v.tolist()) for v in vectors],
                                         dimension=int(vectors.shape[1]),
                                         model=model_info(self.pipeline.encoder.model))
