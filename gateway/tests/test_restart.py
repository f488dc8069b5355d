"""Calls made while an upstream restarts wait for it (GATEWAY_UPSTREAM_WAIT_S) instead of failing."""

from __future__ import annotations

import asyncio

import grpc

from maas_gateway.testing import CHANNEL_OPTIONS, UpstreamConfig, echo_upstream, free_port, gateway, protos

pb, pb_grpc = protos()


async def test_calls_made_while_the_upstream_restarts_go_through_when_it_is_back() -> None:
    """Unary calls made while the upstream is down (a restart) wait for it, within GATEWAY_UPSTREAM_WAIT_S (5 s)
    and their deadline, instead of failing: nothing of them was sent, so this holds for any method."""
    port = free_port()
    up = echo_upstream(name="first", port=port)
    await up.__aenter__()
    async with gateway({"echo": UpstreamConfig(target=f"127.0.0.1:{port}")}) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            stub = pb_grpc.EchoStub(ch)
            first = await stub.Unary(pb.EchoRequest(text="before"), timeout=5)
            assert first.served_by == "first"
            await up.__aexit__(None, None, None)  # the restart begins
            calls = [asyncio.ensure_future(stub.Unary(pb.EchoRequest(text=f"during {i}"), timeout=10))
                     for i in range(3)]
            await asyncio.sleep(1.0)
            finished = [c for c in calls if c.done()]
            assert not finished, "the calls failed instead of waiting for the restart"
            async with echo_upstream(name="second", port=port):
                replies = await asyncio.gather(*calls)
                served_by = [r.served_by for r in replies]
                assert served_by == ["second"] * 3
