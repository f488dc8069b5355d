"""Calls made while an upstream restarts wait for it (GATEWAY_UPSTREAM_WAIT_S) instead of failing."""

from __future__ import annotations

import asyncio

import grpc

from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas_gateway.testing import (CHANNEL_OPTIONS, UpstreamConfig, echo_upstream, eventually, free_port, gateway,
                                 protos)

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
            # once the gateway has seen it go (its health for the service turns NOT_SERVING); in the moment before,
            # a call can still be written to the closing connection and fail fast, as grpc does
            await eventually(lambda: _not_serving(ch), timeout=10)
            calls = [asyncio.ensure_future(stub.Unary(pb.EchoRequest(text=f"during {i}"), timeout=10))
                     for i in range(3)]
            await asyncio.sleep(1.0)
            finished = [c for c in calls if c.done()]
            assert not finished, "the calls failed instead of waiting for the restart"
            async with echo_upstream(name="second", port=port):
                replies = await asyncio.gather(*calls)
                served_by = [r.served_by for r in replies]
                assert served_by == ["second"] * 3


async def _not_serving(channel: grpc.aio.Channel) -> bool:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="maas.testing.v1.Echo"), timeout=5)
    return reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
