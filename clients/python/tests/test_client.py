"""The SDK against a running gateway: every nlp-analysis call, errors with their details, request ids, retries
(honouring RetryInfo, within the overall timeout), API keys, streams; blocking and asyncio clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import grpc
import pytest

from maas_client import NO_RETRY, AsyncClient, Client, MaasError, RetryPolicy
from maas_client.services import ServiceClient
from maas_gateway.testing import protos
from maas_runtime.errors import Overloaded, Unavailable

pb, pb_grpc = protos()


async def sync(fn: Callable[[], Any]) -> Any:
    """A blocking client call, in a thread: the servers answer on this test's event loop."""
    return await asyncio.to_thread(fn)


async def test_blocking_client_calls_every_rpc(stub_suite: dict) -> None:
    def calls() -> tuple:
        with Client(stub_suite["address"]) as maas:
            return (maas.nlp.analyze_sentiment("I love it"), maas.nlp.classify(["a", "b"], ["x", "y"]),
                    maas.nlp.classify("sad piano"), maas.nlp.embed("calm"), maas.nlp.extract_entities("in London"),
                    maas.health(), maas.health("maas.nlp.v1.NlpAnalysis"))

    sentiment, zero_shot, builtin, embedding, entities, health, nlp_health = await sync(calls)
    assert sentiment.results[0].positive == pytest.approx(0.7)
    assert [s.label for s in zero_shot.results[1].scores] == ["x", "y"] and len(zero_shot.results) == 2
    assert builtin.results[0].scores[0].group == "mood"
    assert list(embedding.embeddings[0].values) == pytest.approx([0.6, 0.8]) and embedding.dimension == 2
    assert entities.results[0].entities[0].text == "London"
    assert health == nlp_health == "SERVING"


async def test_async_client(stub_suite: dict) -> None:
    async with AsyncClient(stub_suite["address"]) as maas:
        sentiment, embedding = await asyncio.gather(maas.nlp.analyze_sentiment(["a", "b"]), maas.nlp.embed("c"))
        assert len(sentiment.results) == 2 and embedding.dimension == 2
        assert await maas.health() == "SERVING"


async def test_invalid_input_is_an_error_with_field_violations_and_request_id(stub_suite: dict) -> None:
    async with AsyncClient(stub_suite["address"]) as maas:
        with pytest.raises(MaasError) as info:
            await maas.nlp.analyze_sentiment(["good", "bad"], request_id="my-request-1")
    e = info.value
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.attempts == 1  # not retried
    assert e.request_id == "my-request-1" and "my-request-1" in str(e)
    assert [(v.field, v.description) for v in e.field_violations] == [("texts[1]", "is refused by the stub")]

    def blocking() -> MaasError:
        with Client(stub_suite["address"]) as maas:
            try:
                maas.nlp.embed("bad")
            except MaasError as error:
                return error
        raise AssertionError("no error")

    e = await sync(blocking)
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT and e.request_id and e.field_violations[0].field == "texts[0]"


async def test_retries_honour_retry_info(stub_suite: dict) -> None:
    nlp = stub_suite["nlp"]
    nlp.fail_next(Overloaded("queue full", retry_after_s=0.3))
    async with AsyncClient(stub_suite["address"]) as maas:
        t0 = time.monotonic()
        reply = await maas.nlp.embed("x")
        assert reply.dimension == 2 and time.monotonic() - t0 >= 0.3  # waited as the server asked

        nlp.fail_next(Unavailable("loading"), Unavailable("loading"))
        assert (await maas.nlp.embed("x")).dimension == 2  # backoff, then through

        nlp.fail_next(Overloaded("queue full", retry_after_s=0.3))
        with pytest.raises(MaasError) as info:
            await maas.nlp.embed("x", retry=NO_RETRY)
        assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert info.value.retry_after == pytest.approx(0.3)


async def test_retries_stop_at_the_overall_timeout(stub_suite: dict) -> None:
    nlp = stub_suite["nlp"]
    nlp.fail_next(*[Overloaded("queue full", retry_after_s=5.0)] * 3)
    try:
        def call() -> MaasError:
            with Client(stub_suite["address"], timeout=1.0) as maas:
                try:
                    maas.nlp.embed("x")
                except MaasError as error:
                    return error
            raise AssertionError("no error")

        t0 = time.monotonic()
        e = await sync(call)
        assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() - t0 < 1.0  # no 5 s sleep
    finally:
        nlp.failures.clear()


async def test_retry_policy_backoff() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.1, max_backoff_s=0.15)
    unavailable = MaasError(grpc.StatusCode.UNAVAILABLE, "down")
    assert 0.05 <= policy.delay(unavailable, 1) <= 0.1
    assert 0.075 <= policy.delay(unavailable, 2) <= 0.15
    assert policy.delay(unavailable, 3) is None  # attempts spent
    assert policy.delay(MaasError(grpc.StatusCode.INTERNAL, "bug"), 1) is None


async def test_api_key(stub_suite: dict) -> None:
    async with AsyncClient(stub_suite["keyed"]) as maas:
        with pytest.raises(MaasError) as info:
            await maas.nlp.embed("x")
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    async with AsyncClient(stub_suite["keyed"], api_key="sdk-key") as maas:
        assert (await maas.nlp.embed("x")).dimension == 2


class Echo(ServiceClient):
    """How a streaming service slots in (the text generator's will look like this)."""

    stub = pb_grpc.EchoStub

    def tokens(self, count: int, fail_code: int = 0, **options: Any) -> Any:
        return self._stream("ServerStream", pb.EchoRequest(text="t", count=count, fail_code=fail_code), **options)


async def test_streams_through_the_sdk(stub_suite: dict) -> None:
    async with AsyncClient(stub_suite["address"]) as maas:
        echo = Echo(maas.channel, maas._invoke)
        assert [r.index async for r in echo.tokens(3)] == [0, 1, 2]
        got = []
        with pytest.raises(MaasError) as info:  # failed after messages: not retried (they would repeat)
            async for r in echo.tokens(2, fail_code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]):
                got.append(r.index)
        assert got == [0, 1] and info.value.attempts == 1

    def blocking() -> list[int]:
        with Client(stub_suite["address"]) as maas:
            return [r.index for r in Echo(maas.channel, maas._invoke).tokens(4)]

    assert await sync(blocking) == [0, 1, 2, 3]


async def test_unreachable_target_is_unavailable_after_retries() -> None:
    from maas_gateway.testing import free_port

    async with AsyncClient(f"127.0.0.1:{free_port()}", timeout=3,
                           retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.05)) as maas:
        with pytest.raises(MaasError) as info:
            await maas.nlp.embed("x")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and info.value.attempts == 2
