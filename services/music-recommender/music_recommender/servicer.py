"""Protobuf <-> domain types for maas.music.v1.MusicRecommender, and nothing else."""

from __future__ import annotations

import grpc

from maas.common.v1 import common_pb2
from maas.music.v1 import recommender_pb2 as pb
from maas.music.v1 import recommender_pb2_grpc
from maas_runtime.rpc import model_info
from music_recommender.catalog import CatalogTrack
from music_recommender.pipeline import Filters, RecommenderPipeline, RecommendResult

_KINDS = {pb.INTERACTION_TYPE_PLAY: "play", pb.INTERACTION_TYPE_LIKE: "like", pb.INTERACTION_TYPE_SKIP: "skip",
          pb.INTERACTION_TYPE_RATING: "rating"}
_TRACK_FIELDS = ("track_id", "title", "composer", "collection", "time_signature", "key", "part_count", "note_count",
                 "ambitus_semitones", "origin", "description")


def track_pb(t: CatalogTrack) -> pb.CatalogTrack:
    return pb.CatalogTrack(**{f: getattr(t, f) for f in _TRACK_FIELDS}, tags=t.tags)


def track_from_pb(m: pb.CatalogTrack) -> CatalogTrack:
    return CatalogTrack(**{f: getattr(m, f) for f in _TRACK_FIELDS}, tags=list(m.tags))


def filters_from_pb(m: pb.RecommendationFilter) -> Filters:
    return Filters(list(m.collections), list(m.composers), list(m.time_signatures), m.min_part_count,
                   m.max_part_count, list(m.exclude_track_ids), m.include_interacted)


class MusicRecommenderServicer(recommender_pb2_grpc.MusicRecommenderServicer):
    def __init__(self, pipeline: RecommenderPipeline) -> None:
        self.pipeline = pipeline

    def _model(self) -> common_pb2.ModelInfo:
        return model_info(self.pipeline.scorer)

    @staticmethod
    def _recs(result: RecommendResult) -> list[pb.Recommendation]:
        return [pb.Recommendation(track=track_pb(r.track), score=r.score, reason=r.reason,
                                  collaborative=r.contributions[0], taste=r.contributions[1],
                                  query=r.contributions[2], popularity=r.contributions[3]) for r in result.items]

    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        result = await self.pipeline.recommend(request.user_id, request.query_text, list(request.seed_track_ids),
                                               request.k, filters_from_pb(request.filter))
        return pb.RecommendResponse(recommendations=self._recs(result), cold_start=result.cold_start,
                                    snapshot_version=result.snapshot_version, model=self._model())

    async def SimilarTracks(self, request: pb.SimilarTracksRequest,
                            context: grpc.aio.ServicerContext) -> pb.SimilarTracksResponse:
        result = await self.pipeline.similar(request.track_id, request.k, filters_from_pb(request.filter))
        return pb.SimilarTracksResponse(recommendations=self._recs(result), snapshot_version=result.snapshot_version,
                                        model=self._model())

    async def RecordInteractions(self, request: pb.RecordInteractionsRequest,
                                 context: grpc.aio.ServicerContext) -> pb.RecordInteractionsResponse:
        raw = [(e.event_id, e.user_id, e.track_id, _KINDS.get(e.type, "unspecified"), e.rating,
                e.occurred_at.seconds + e.occurred_at.nanos / 1e9 if e.HasField("occurred_at") else None)
               for e in request.events]
        recorded, duplicates = await self.pipeline.record(raw)
        return pb.RecordInteractionsResponse(recorded=recorded, duplicates=duplicates)

    async def UpsertTracks(self, request: pb.UpsertTracksRequest,
                           context: grpc.aio.ServicerContext) -> pb.UpsertTracksResponse:
        created, updated, version = await self.pipeline.upsert([track_from_pb(t) for t in request.tracks])
        return pb.UpsertTracksResponse(created=created, updated=updated, snapshot_version=version)

    async def GetTrack(self, request: pb.GetTrackRequest, context: grpc.aio.ServicerContext) -> pb.GetTrackResponse:
        track, count = await self.pipeline.get_track(request.track_id)
        return pb.GetTrackResponse(track=track_pb(track), interaction_count=count)

    async def RetrainModel(self, request: pb.RetrainModelRequest,
                           context: grpc.aio.ServicerContext) -> pb.RetrainModelResponse:
        r = await self.pipeline.retrain()
        return pb.RetrainModelResponse(snapshot_version=r.snapshot_version, tracks=r.tracks, users=r.users,
                                       interactions=r.interactions, seconds=r.seconds)
