"""The suite's gateway routes maas.music.v1.MusicRecommender (learnt from the recommender's reflection), with
statuses and field violations passed through unchanged."""

from __future__ import annotations

import grpc

from maas.music.v1 import recommender_pb2 as pb
from maas.music.v1 import recommender_pb2_grpc
from maas_gateway.testing import gateway


async def test_recommend_through_the_gateway(recommender):
    async with gateway({"music-recommender": recommender[1]}) as (_, address):
        async with grpc.aio.insecure_channel(address) as ch:
            stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
            reply = await stub.Recommend(pb.RecommendRequest(query_text="scottish strathspey", k=3))
            assert all("strathspey" in r.track.tags for r in reply.recommendations)
            try:
                await stub.Recommend(pb.RecommendRequest(query_text="x", k=0))
                raise AssertionError("k=0 was accepted")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("k:")
