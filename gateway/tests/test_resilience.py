"""Faults and replicas: an upstream that goes away (stopped, or killed in the middle of a stream) is answered
UNAVAILABLE at once and used again when it is back; round robin over replicas, skipping a NOT_SERVING one; an
upstream unreachable at start is routed once it comes; an upstream without reflection, routed by configuration."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any, AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas_gateway.testing import (CHANNEL_OPTIONS, UpstreamConfig, echo_servicer, echo_upstream, eventually, free_port,
                                  gateway, protos)

pb, pb_grpc = protos()
ECHO = "maas.testing.v1.Echo"


async def echo_status(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return (await stub.Check(health_pb2.HealthCheckRequest(service=ECHO), timeout=5)).status


async def answers(stub: Any) -> bool:
    try:
        return (await stub.Unary(pb.EchoRequest(text="ping"), timeout=2)).text == "ping"
    except grpc.aio.AioRpcError:
        return False


async def test_unavailable_after_the_wait_then_back_when_the_upstream_restarts() -> None:
    """A call to an upstream that is down waits GATEWAY_UPSTREAM_WAIT_S (1 s here) for it to come back, then is
    UNAVAILABLE naming it: fast, never the caller's whole deadline."""
    port = free_port()
    up = echo_upstream(name="first", port=port)
    await up.__aenter__()
    async with gateway({"echo": UpstreamConfig(target=f"127.0.0.1:{port}")}, upstream_wait_s=1) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            stub = pb_grpc.EchoStub(ch)
            assert (await stub.Unary(pb.EchoRequest(text="before"), timeout=5)).served_by == "first"
            await up.__aexit__(None, None, None)  # the upstream goes away

            t0 = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Unary(pb.EchoRequest(text="during"), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - t0 < 2.5, "an unreachable upstream must fail after the wait, not the deadline"
            assert "echo is unreachable" in info.value.details()
            assert "127.0.0.1" not in info.value.details(), "internal addresses stay inside"
            assert dict(info.value.trailing_metadata())["x-request-id"]
            await eventually(lambda: _status_is(ch, health_pb2.HealthCheckResponse.NOT_SERVING), timeout=5)

            async with echo_upstream(name="second", port=port):  # back, same address
                t0 = time.monotonic()
                await eventually(lambda: answers(stub), timeout=10, interval=0.2)
                assert time.monotonic() - t0 < 5.0
                assert (await stub.Unary(pb.EchoRequest(text="after"), timeout=5)).served_by == "second"
                await eventually(lambda: _status_is(ch, health_pb2.HealthCheckResponse.SERVING), timeout=5)


async def _status_is(channel: grpc.aio.Channel, want: int) -> bool:
    return await echo_status(channel) == want


# ---- a service killed while a stream runs through the gateway ---------------------------------------------------
class EchoProcess:
    """``python -m maas_gateway.testing`` on a fixed port: a real process to kill."""

    def __init__(self, port: int, name: str) -> None:
        env = {**os.environ, "ECHO_PORT": str(port), "ECHO_NAME": name, "ECHO_LOG_FORMAT": "text",
               "ECHO_LOG_LEVEL": "WARNING", "ECHO_GRACE_SECONDS": "0"}
        self.proc = subprocess.Popen([sys.executable, "-m", "maas_gateway.testing"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.address = f"127.0.0.1:{port}"

    async def serving(self, timeout: float = 60) -> None:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as ch:
            stub = health_pb2_grpc.HealthStub(ch)

            async def up() -> bool:
                assert self.proc.poll() is None, self.proc.stderr.read().decode() if self.proc.stderr else ""
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                except grpc.aio.AioRpcError:
                    return False
                return reply.status == health_pb2.HealthCheckResponse.SERVING

            await eventually(up, timeout=timeout, interval=0.2)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def processes() -> Any:
    started: list[EchoProcess] = []

    def start(port: int, name: str) -> EchoProcess:
        started.append(EchoProcess(port, name))
        return started[-1]

    yield start
    for p in started:
        p.kill()


async def test_service_killed_during_a_stream(processes: Any) -> None:
    port = free_port()
    first = processes(port, "first")
    await first.serving()
    async with gateway({"echo": UpstreamConfig(target=first.address)}) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            stub = pb_grpc.EchoStub(ch)
            call = stub.ServerStream(pb.EchoRequest(text="tick", count=10_000, delay_ms=20), timeout=60)
            got = [await call.read() for _ in range(3)]
            assert [r.index for r in got] == [0, 1, 2]
            first.kill()  # SIGKILL: no goodbye from the upstream
            t0 = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                while True:
                    if await call.read() is grpc.aio.EOF:
                        break
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
            assert time.monotonic() - t0 < 5.0

            second = processes(port, "second")
            await second.serving()
            await eventually(lambda: answers(stub), timeout=10, interval=0.2)
            replies = [r async for r in stub.ServerStream(pb.EchoRequest(text="again", count=3), timeout=10)]
            assert [(r.index, r.served_by) for r in replies] == [(0, "second"), (1, "second"), (2, "second")]


# ---- replicas ---------------------------------------------------------------------------------------------------
async def test_round_robin_over_replicas_and_skipping_one_not_serving() -> None:
    async with echo_upstream(name="a") as a, echo_upstream(name="b") as b:
        target = f"{a.address},{b.address}"  # a list of addresses; dns:///name:port balances the same way
        async with gateway({"echo": UpstreamConfig(target=target)}) as (_, address):
            async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
                stub = pb_grpc.EchoStub(ch)
                await eventually(lambda: _both_used(stub), timeout=10)
                seen = Counter([(await stub.Unary(pb.EchoRequest(), timeout=5)).served_by for _ in range(40)])
                assert seen["a"] == seen["b"] == 20, seen  # one connection per replica, calls alternate

                await b.server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)  # b drains
                await eventually(lambda: _only(stub, "a"), timeout=10)
                await b.server.health.set("", health_pb2.HealthCheckResponse.SERVING)
                await eventually(lambda: _both_used(stub), timeout=10)


async def test_dns_target() -> None:
    """dns:///name:port: grpc's resolver, every address of the name (a headless Service's pods), round robin."""
    async with echo_upstream(name="by-name") as up:
        async with gateway({"echo": UpstreamConfig(target=f"dns:///localhost:{up.port}")}) as (_, address):
            async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
                stub = pb_grpc.EchoStub(ch)
                assert {(await stub.Unary(pb.EchoRequest(), timeout=5)).served_by for _ in range(4)} == {"by-name"}


async def _both_used(stub: Any) -> bool:
    seen = {(await stub.Unary(pb.EchoRequest(), timeout=5)).served_by for _ in range(6)}
    return seen == {"a", "b"}


async def _only(stub: Any, name: str) -> bool:
    seen = {(await stub.Unary(pb.EchoRequest(), timeout=5)).served_by for _ in range(10)}
    return seen == {name}


# ---- discovery --------------------------------------------------------------------------------------------------
async def test_upstream_unreachable_at_start_is_routed_when_it_comes() -> None:
    port = free_port()
    async with gateway({"echo": UpstreamConfig(target=f"127.0.0.1:{port}")},
                       discovery_timeout_s=0.5) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            stub = pb_grpc.EchoStub(ch)
            health = health_pb2_grpc.HealthStub(ch)
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == \
                health_pb2.HealthCheckResponse.SERVING  # the gateway serves; it just has nothing to route yet
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Unary(pb.EchoRequest(text="early"), timeout=5)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # not UNIMPLEMENTED: it may exist
            async with echo_upstream(name="late", port=port):
                await eventually(lambda: answers(stub), timeout=10, interval=0.2)
            # once every upstream has answered, an unknown service is UNIMPLEMENTED
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary("/maas.nowhere.v1.Nothing/Do")(b"", timeout=5)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_upstream_without_reflection_routed_by_configuration() -> None:
    server = grpc.aio.server()  # a bare server: no reflection, no health service
    pb_grpc.add_EchoServicer_to_server(echo_servicer("plain"), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        config = UpstreamConfig(target=f"127.0.0.1:{port}", services=[ECHO])
        async with gateway({"plain": config}) as (_, address):
            async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
                stub = pb_grpc.EchoStub(ch)
                # method shapes unknown: every call travels as a bidirectional stream, which carries them all
                assert (await stub.Unary(pb.EchoRequest(text="u"), timeout=5)).text == "u"
                assert [r.index async for r in stub.ServerStream(pb.EchoRequest(count=2), timeout=5)] == [0, 1]
                assert (await stub.ClientStream(_texts("a", "b"), timeout=5)).text == "a b"
                assert [r.text async for r in stub.BidiStream(_texts("x", "y"), timeout=5)] == ["x", "y"]
                # (an unknown method is forwarded too and the upstream's UNIMPLEMENTED comes back -- except, now
                # and then, grpc-python's INTERNAL "Internal error from Core" when the upstream ends the stream
                # before the request is written: grpc/grpc#36066. Services with reflection never take this path.)
    finally:
        await server.stop(0)


async def _texts(*texts: str) -> AsyncIterator[Any]:
    for t in texts:
        yield pb.EchoRequest(text=t)


# ---- stopping ---------------------------------------------------------------------------------------------------
async def test_sigterm_reports_not_serving_and_drains_calls_in_flight() -> None:
    async with echo_upstream() as up:
        async with gateway({"echo": up.address}, grace_seconds=10) as (gw, address):
            async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
                stub = pb_grpc.EchoStub(ch)
                watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=20)
                assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
                slow = asyncio.ensure_future(stub.Unary(pb.EchoRequest(text="slow", delay_ms=1500), timeout=20))
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                gw.proc.send_signal(signal.SIGTERM)
                assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
                watch.cancel()
                assert (await slow).text == "slow"  # the call in flight finishes
                assert await asyncio.to_thread(gw.proc.wait, 20) == 0
                assert time.monotonic() - t0 < 5.0  # as soon as the calls are done, not after the whole grace
    log = gw.log()
    assert "signal received, draining" in log and "stopped" in log


async def test_grace_ends_calls_still_running() -> None:
    async with echo_upstream() as up:
        async with gateway({"echo": up.address}, grace_seconds=0.5) as (gw, address):
            async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
                slow = pb_grpc.EchoStub(ch).Unary(pb.EchoRequest(text="slow", delay_ms=10_000), timeout=30)
                await asyncio.sleep(0.3)
                t0 = time.monotonic()
                gw.proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(gw.proc.wait, 20) == 0
                assert time.monotonic() - t0 < 3.0
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await slow
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_long_stream_survives_connection_age_rotation() -> None:
    """Connections age out (MAX_CONNECTION_AGE_S, so balancers find new replicas) on the service and at the
    gateway; a stream in flight then gets MAX_CONNECTION_AGE_GRACE_S to finish (it had the drain's 1 s before)."""
    async with echo_upstream(max_connection_age_s=0.5, grace_seconds=1) as up:
        async with gateway({"echo": up.address}, max_connection_age_s=0.5, grace_seconds=1) as (_, address):
            async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
                stream = pb_grpc.EchoStub(ch).ServerStream(pb.EchoRequest(text="long", count=6, delay_ms=500),
                                                           timeout=30)
                got = [r.index async for r in stream]
                assert got == list(range(6))  # ~3 s: past both connections' age and the old 1 s grace
                assert (await pb_grpc.EchoStub(ch).Unary(pb.EchoRequest(text="after"), timeout=10)).text == "after"
