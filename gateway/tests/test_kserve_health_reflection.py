"""KServe v2 routed by model name, the gateway's health (its own and one entry per routed service), and the
reflection that lists the whole suite."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from inference import grpc_service_pb2 as kpb
from inference import grpc_service_pb2_grpc as kpb_grpc

from maas_gateway.testing import CHANNEL_OPTIONS, echo_upstream, eventually, gateway
from maas_runtime.testing import triton_check

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ROUTED = ["inference.GRPCInferenceService", "maas.nlp.v1.NlpAnalysis", "maas.testing.v1.Echo"]


@pytest.fixture(scope="module")
def kserve(channel: grpc.aio.Channel) -> kpb_grpc.GRPCInferenceServiceStub:
    return kpb_grpc.GRPCInferenceServiceStub(channel)


def infer_request(model: str, rows: list[list[float]]) -> kpb.ModelInferRequest:
    request = kpb.ModelInferRequest(model_name=model, id="r1")
    request.inputs.add(name="x", datatype="FP32", shape=[len(rows), 4])
    request.raw_input_contents.append(struct.pack(f"<{4 * len(rows)}f", *[v for r in rows for v in r]))
    return request


# ---- KServe v2 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model, factor", [("double", 2.0), ("triple", 3.0)])
async def test_model_infer_goes_to_the_upstream_serving_the_model(kserve: Any, model: str, factor: float) -> None:
    reply = await kserve.ModelInfer(infer_request(model, [[1, 2, 3, 4]]), timeout=10)
    assert (reply.model_name, reply.id) == (model, "r1")
    assert list(struct.unpack("<4f", reply.raw_output_contents[0])) == [factor * v for v in (1, 2, 3, 4)]
    meta = await kserve.ModelMetadata(kpb.ModelMetadataRequest(name=model), timeout=10)
    assert meta.name == model and [t.name for t in meta.inputs] == ["x"]
    assert (await kserve.ModelReady(kpb.ModelReadyRequest(name=model), timeout=10)).ready


async def test_unknown_model_is_not_found(kserve: Any) -> None:
    for call in (kserve.ModelInfer(infer_request("no-such-model", [[1, 2, 3, 4]]), timeout=10),
                 kserve.ModelMetadata(kpb.ModelMetadataRequest(name="no-such-model"), timeout=10),
                 kserve.ModelReady(kpb.ModelReadyRequest(name="no-such-model"), timeout=10)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "no-such-model" in info.value.details()


async def test_missing_model_name_is_invalid_argument(kserve: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await kserve.ModelInfer(kpb.ModelInferRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "model_name" in info.value.details()


async def test_upstream_errors_for_a_known_model_pass_through(kserve: Any) -> None:
    request = infer_request("double", [[1, 2, 3, 4]])
    request.inputs[0].datatype = "INT64"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await kserve.ModelInfer(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "inputs[0].datatype" in info.value.details()


async def test_server_level_calls_describe_the_gateway(kserve: Any) -> None:
    assert (await kserve.ServerLive(kpb.ServerLiveRequest(), timeout=10)).live
    assert (await kserve.ServerReady(kpb.ServerReadyRequest(), timeout=10)).ready
    assert (await kserve.ServerMetadata(kpb.ServerMetadataRequest(), timeout=10)).name == "maas-gateway"


async def test_tritonclient_through_the_gateway(gw: Any) -> None:
    code, out, err = await triton_check(gw[1], "triple", {"x": [[1.0, 2.0, 3.0, 4.0]]})
    assert code == 0, (out, err)
    assert out["infer"]["outputs"]["y"]["data"] == [[3.0, 6.0, 9.0, 12.0]]
    assert out["server_live"] and out["server_ready"] and out["model_ready"]
    assert out["server_metadata"]["name"] == "maas-gateway" and out["model_metadata"]["name"] == "triple"


# ---- health ----------------------------------------------------------------------------------------------------
async def test_health_has_the_gateway_and_every_routed_service(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ["", *ROUTED]:
        assert (await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status == SERVING, name
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Check(health_pb2.HealthCheckRequest(service="maas.nowhere.v1.Nothing"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_service_health_follows_the_upstream(repository: Any) -> None:
    async with echo_upstream(name="e") as up, gateway({"e": _config(up.address)}) as (app, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            stub = health_pb2_grpc.HealthStub(ch)

            async def status(name: str = "maas.testing.v1.Echo") -> int:
                return (await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)).status

            assert await status() == SERVING
            watch = stub.Watch(health_pb2.HealthCheckRequest(service="maas.testing.v1.Echo"), timeout=20)
            assert (await watch.read()).status == SERVING
            await up.server.health.set("maas.testing.v1.Echo", NOT_SERVING)  # e.g. a model server reloading
            await eventually(lambda: _is(status(), NOT_SERVING), timeout=5)
            assert (await watch.read()).status == NOT_SERVING  # watchers hear about it too
            assert await status("") == SERVING  # the gateway itself still serves (other routes)
            await up.server.health.set("maas.testing.v1.Echo", SERVING)
            await eventually(lambda: _is(status(), SERVING), timeout=5)
            watch.cancel()


async def _is(status: Any, want: int) -> bool:
    return (await status) == want


def _config(target: str) -> Any:
    from maas_gateway.testing import UpstreamConfig

    return UpstreamConfig(target=target)


# ---- reflection ------------------------------------------------------------------------------------------------
async def test_reflection_lists_every_routed_service(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = [r async for r in stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)]
    names = [s.name for s in replies[0].list_services_response.service]
    assert names == sorted([*ROUTED, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"])


async def test_reflection_describes_the_routed_services(gw: Any) -> None:
    """What grpcurl does: resolve each service and its messages through the gateway's reflection alone
    (grpc's blocking reflection client, in a thread: the gateway answers on this event loop)."""
    await asyncio.to_thread(_describe, gw[1])


def _describe(address: str) -> None:
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(ch))
        nlp = pool.FindServiceByName("maas.nlp.v1.NlpAnalysis")
        assert [m.name for m in nlp.methods] == ["AnalyzeSentiment", "ClassifyText", "ExtractEntities", "EmbedText"]
        echo = pool.FindServiceByName("maas.testing.v1.Echo")
        assert echo.methods_by_name["BidiStream"].client_streaming
        assert pool.FindMessageTypeByName("maas.common.v1.ModelInfo").fields_by_name["build_key"]
        kserve = pool.FindServiceByName("inference.GRPCInferenceService")
        assert "ModelInfer" in kserve.methods_by_name
        assert pool.FindServiceByName("grpc.health.v1.Health")
