"""Forwarding through the gateway in every RPC shape: messages, status and details, metadata, deadlines,
cancellation, unknown services and methods, message size limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from maas_gateway.testing import CHANNEL_OPTIONS, eventually, gateway, protos
from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc


pb, pb_grpc = protos()


@pytest.fixture(scope="module")
def echo(channel: grpc.aio.Channel) -> Any:
    return pb_grpc.EchoStub(channel)


async def requests(*texts: str, **fields: Any) -> AsyncIterator[Any]:
    for t in texts:
        yield pb.EchoRequest(text=t, **fields)


# ---- the four shapes -------------------------------------------------------------------------------------------
async def test_unary(echo: Any) -> None:
    reply = await echo.Unary(pb.EchoRequest(text="hello", payload=b"\x00\xff"), timeout=10)
    assert (reply.text, reply.payload, reply.served_by) == ("hello", b"\x00\xff", "echo")


async def test_server_streaming(echo: Any) -> None:
    replies = [r async for r in echo.ServerStream(pb.EchoRequest(text="s", count=5), timeout=10)]
    assert [r.index for r in replies] == [0, 1, 2, 3, 4]


async def test_client_streaming(echo: Any) -> None:
    reply = await echo.ClientStream(requests("a", "b", "c"), timeout=10)
    assert (reply.text, reply.index) == ("a b c", 3)


async def test_bidirectional_streaming_answers_as_requests_come(echo: Any) -> None:
    call = echo.BidiStream(timeout=10)
    for text in ("one", "two", "three"):
        await call.write(pb.EchoRequest(text=text))
        assert (await call.read()).text == text  # each answer before the next request is sent
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_typed_service_of_another_upstream(channel: grpc.aio.Channel) -> None:
    stub = nlp_pb2_grpc.NlpAnalysisStub(channel)
    reply = await stub.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest(texts=["x", "y"]), timeout=10)
    assert [r.label for r in reply.results] == [nlp_pb2.SENTIMENT_POSITIVE] * 2


# ---- status, details and metadata come back unchanged ----------------------------------------------------------
async def test_status_and_bad_request_details_pass_through(channel: grpc.aio.Channel) -> None:
    stub = nlp_pb2_grpc.NlpAnalysisStub(channel)
    call = stub.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest(texts=["fine", "bad"]), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "texts[1]: is refused by the stub"
    status = await rpc_status.aio.from_call(call)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("texts[1]", "is refused by the stub")]


async def test_retry_info_passes_through(echo: Any) -> None:
    call = echo.Unary(pb.EchoRequest(text="busy", fail_code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert (await rpc_status.aio.from_call(call)).details[0].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 250


async def test_stream_failure_after_messages_keeps_messages_and_status(echo: Any) -> None:
    call = echo.ServerStream(pb.EchoRequest(text="x", count=2, fail_code=grpc.StatusCode.DATA_LOSS.value[0]),
                             timeout=10)
    got = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for r in call:
            got.append(r.index)
    assert got == [0, 1]
    assert info.value.code() == grpc.StatusCode.DATA_LOSS
    assert "DATA_LOSS" in info.value.details()


async def test_metadata_travels_both_ways(echo: Any) -> None:
    md = (("x-request-id", "req-42"), ("authorization", "Bearer token-1"), ("x-custom", "v"))
    call = echo.Unary(pb.EchoRequest(text="md"), metadata=md, timeout=10)
    reply = await call
    seen = dict(reply.metadata)
    assert seen["x-request-id"] == "req-42" and seen["authorization"] == "Bearer token-1" and seen["x-custom"] == "v"
    assert ("x-request-id", "req-42") in tuple(await call.trailing_metadata())


async def test_request_id_made_by_the_gateway_reaches_the_upstream(echo: Any) -> None:
    call = echo.Unary(pb.EchoRequest(text="no id"), timeout=10)
    reply = await call
    trailing = dict(await call.trailing_metadata())
    assert trailing["x-request-id"] and reply.metadata["x-request-id"] == trailing["x-request-id"]


async def test_streaming_metadata_and_request_id(echo: Any) -> None:
    call = echo.BidiStream(requests("a"), metadata=(("x-request-id", "stream-7"),), timeout=10)
    replies = [r async for r in call]
    assert replies[0].metadata["x-request-id"] == "stream-7"
    assert ("x-request-id", "stream-7") in tuple(await call.trailing_metadata())


# ---- deadlines and cancellation --------------------------------------------------------------------------------
async def test_deadline_is_carried_upstream(echo: Any) -> None:
    reply = await echo.Unary(pb.EchoRequest(text="t"), timeout=3)
    assert 1.0 < reply.time_remaining_s < 3.1  # grpc rounds the encoded timeout up
    replies = [r async for r in echo.ServerStream(pb.EchoRequest(count=1), timeout=3)]
    assert 1.0 < replies[0].time_remaining_s < 3.1
    reply = await echo.Unary(pb.EchoRequest(text="no deadline"))
    assert reply.time_remaining_s == -1


async def test_deadline_exceeded_stops_the_upstream(echo: Any, suite: Any) -> None:
    servicer = suite.echo.servicer
    servicer.cancelled.clear()
    t0 = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await echo.Unary(pb.EchoRequest(text="slow", delay_ms=5000), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < 2.0
    await eventually(servicer.cancelled.is_set, timeout=3)


@pytest.mark.parametrize("shape", ["server", "bidi"])
async def test_cancelling_a_stream_cancels_the_upstream_call(echo: Any, suite: Any, shape: str) -> None:
    servicer = suite.echo.servicer
    servicer.cancelled.clear()
    request = pb.EchoRequest(text="c", count=100, delay_ms=100)
    call = echo.ServerStream(request, timeout=30) if shape == "server" else echo.BidiStream(
        requests(*["c"] * 100, delay_ms=100), timeout=30)
    assert (await call.read()).text == "c"
    call.cancel()
    await eventually(servicer.cancelled.is_set, timeout=3)
    assert call.cancelled()


async def test_cancelling_a_unary_call_cancels_the_upstream_call(echo: Any, suite: Any) -> None:
    servicer = suite.echo.servicer
    servicer.cancelled.clear()
    call = echo.Unary(pb.EchoRequest(text="slow", delay_ms=10_000), timeout=30)
    await asyncio.sleep(0.3)
    call.cancel()
    await eventually(servicer.cancelled.is_set, timeout=3)


# ---- what the gateway does not route ---------------------------------------------------------------------------
async def test_unknown_service_and_method_are_unimplemented(channel: grpc.aio.Channel) -> None:
    for method in ("/maas.nowhere.v1.Nothing/Do", "/maas.testing.v1.Echo/NoSuchMethod",
                   "/maas.nlp.v1.NlpAnalysis/Translate"):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(method)(b"", timeout=5)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED, method


# ---- message size limits ---------------------------------------------------------------------------------------
async def test_message_size_limit_at_the_edge(suite: Any) -> None:
    limit = 64 * 1024
    async with gateway(suite.upstreams(), max_message_bytes=limit) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            echo = pb_grpc.EchoStub(ch)
            ok = await echo.Unary(pb.EchoRequest(payload=b"x" * (limit // 2)), timeout=10)
            assert len(ok.payload) == limit // 2
            with pytest.raises(grpc.aio.AioRpcError) as info:  # request too large: refused by the gateway
                await echo.Unary(pb.EchoRequest(payload=b"x" * (limit + 1)), timeout=10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.aio.AioRpcError) as info:  # answer too large: refused on the way back
                await echo.Unary(pb.EchoRequest(response_bytes=limit + 1), timeout=10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.aio.AioRpcError) as info:  # streams too
                async for _ in echo.BidiStream(requests("a", payload=b"x" * (limit + 1)), timeout=10):
                    pass
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await echo.Unary(pb.EchoRequest(text="still fine"), timeout=10)).text == "still fine"


# ---- concurrency limit -----------------------------------------------------------------------------------------
async def test_max_concurrent_rpcs(suite: Any) -> None:
    async with gateway(suite.upstreams(), max_concurrent_rpcs=1) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            echo = pb_grpc.EchoStub(ch)
            slow = asyncio.ensure_future(echo.Unary(pb.EchoRequest(text="slow", delay_ms=1000), timeout=10))
            await asyncio.sleep(0.3)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await echo.Unary(pb.EchoRequest(text="second"), timeout=10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await slow).text == "slow"
            assert (await echo.Unary(pb.EchoRequest(text="after"), timeout=10)).text == "after"
