"""What the runtime gained for the gateway: health Watch through the interceptor, TLS settings, a generic handler
hook, and reading one string field off the wire."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from inference import grpc_service_pb2 as kpb

from maas_runtime.server import ModelServer
from maas_runtime.settings import ServerSettings
from maas_runtime.wire import string_field

OPTIONS = [("grpc.enable_http_proxy", 0)]


async def test_health_watch_streams_changes_through_the_interceptor() -> None:
    """grpc's aio HealthServicer.Watch writes with context.write (a coroutine, not an async generator); the
    interceptor used to break it (INTERNAL), and with it client-side health checking."""
    server = ModelServer(ServerSettings(port=0, log_format="text"), name="t")
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=10)
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            await server.set_ready()
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
    finally:
        await server.stop(0)


async def test_generic_handler_is_served_after_the_registered_services() -> None:
    class Echo(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            if not details.method.startswith("/x.v1.Any/"):
                return None

            async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                return request[::-1]

            return grpc.unary_unary_rpc_method_handler(echo)

    server = ModelServer(ServerSettings(port=0, log_format="text"), name="t", reflection=False)
    server.add_generic_handler(Echo())
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) as ch:
            assert await ch.unary_unary("/x.v1.Any/Reverse")(b"abc", timeout=5) == b"cba"
            health = health_pb2_grpc.HealthStub(ch)
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status  # still the runtime's
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary("/y.v1.Other/Do")(b"", timeout=5)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)


def test_tls_settings_go_together(tmp_path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("")
    with pytest.raises(ValueError, match="go together"):
        ServerSettings(tls_key_file=pem)
    with pytest.raises(ValueError, match="mutual TLS"):
        ServerSettings(tls_client_ca_file=pem)
    assert ServerSettings(tls_cert_file=pem, tls_key_file=pem).tls_cert_file == pem


def test_string_field() -> None:
    request = kpb.ModelInferRequest(model_name="text-encoder", id="r", raw_input_contents=[b"\x00" * 100_000])
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    data = request.SerializeToString()
    assert string_field(data, 1) == "text-encoder"
    assert string_field(data, 3) == "r"
    assert string_field(kpb.ModelInferRequest(id="r").SerializeToString(), 1) is None
    assert string_field(b"\x0a\x01a\x0a\x01b", 1) == "b"  # the last occurrence wins, as in protobuf
    with pytest.raises(ValueError):
        string_field(b"\x0a\x05ab", 1)  # truncated
    with pytest.raises(ValueError):
        string_field(b"\x0a\x02\xff\xfe", 1)  # not UTF-8
