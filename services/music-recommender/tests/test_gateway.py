"""The suite's gateway routes maas.music.v1.MusicRecommender (learnt from the recommender's reflection), with
statuses and field violations passed through unchanged."""

from __future__ import annotations

import grpc

from maas.music.v1 import recommender_pb2 as pb
from maas.music.v1 import recommender_pb2_grpc
from maas_gateway.app import GatewayApp
from maas_gateway.settings import GatewaySettings


async def test_recommend_through_the_gateway(recommender):
    gateway = GatewayApp(GatewaySettings(host="127.0.0.1", port=0, log_format="text",
                                         upstreams={"music-recommender": {"target": recommender[1]}}))
    port = await gateway.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
            reply = await stub.Recommend(pb.RecommendRequest(query_text="scottish strathspey", k=3))
            assert all("strathspey" in r.track.tags for r in reply.recommendations)
            try:
                await stub.Recommend(pb.RecommendRequest(query_text="x", k=0))
                raise AssertionError("k=0 was accepted")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("k:")
    finally:
        await gateway.stop()
