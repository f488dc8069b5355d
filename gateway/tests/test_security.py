"""API keys and per-key rate limits; TLS at the edge (and mutual TLS there) and mutual TLS to the upstreams, with
certificates made by the test. (The token bucket and how a key is read from the metadata are unit-tested in Go:
gateway/cmd/maas-gateway/auth_test.go, run by test_settings.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_status import rpc_status

from maas_gateway.testing import CHANNEL_OPTIONS, Pki, UpstreamConfig, echo_upstream, gateway, gateway_exit, protos

pb, pb_grpc = protos()


async def unary(address: str, metadata: tuple = (), credentials: grpc.ChannelCredentials | None = None,
                options: list | None = None) -> Any:
    options = [*CHANNEL_OPTIONS, *(options or [])]
    channel = grpc.aio.secure_channel(address, credentials, options=options) if credentials else \
        grpc.aio.insecure_channel(address, options=options)
    async with channel:
        return await pb_grpc.EchoStub(channel).Unary(pb.EchoRequest(text="k"), metadata=metadata, timeout=5)


async def code_of(awaitable: Any) -> grpc.StatusCode:
    try:
        await awaitable
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


# ---- API keys --------------------------------------------------------------------------------------------------
async def test_api_keys(suite: Any) -> None:
    async with gateway(suite.upstreams(), api_keys="alpha-key,beta-key") as (_, address):
        assert await code_of(unary(address)) == grpc.StatusCode.UNAUTHENTICATED
        assert await code_of(unary(address, (("authorization", "Bearer wrong"),))) == grpc.StatusCode.UNAUTHENTICATED
        assert await code_of(unary(address, (("authorization", "Basic alpha-key"),))) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert (await unary(address, (("authorization", "Bearer alpha-key"),))).text == "k"
        reply = await unary(address, (("x-api-key", "beta-key"),))
        assert reply.metadata["x-api-key"] == "beta-key"  # carried upstream, as authorization is

        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            # health needs no key (orchestrators have none); everything else does, reflection included
            health = health_pb2_grpc.HealthStub(ch)
            assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == \
                health_pb2.HealthCheckResponse.SERVING
            reflection = reflection_pb2_grpc.ServerReflectionStub(ch)
            # no request sent: the key is checked on the call's headers (a request written while the gateway
            # refuses the stream can fail on the client's side with INTERNAL instead of the gateway's status)
            call = reflection.ServerReflectionInfo(timeout=5)
            assert await call.code() == grpc.StatusCode.UNAUTHENTICATED
            streaming = pb_grpc.EchoStub(ch).ServerStream(pb.EchoRequest(count=2), timeout=5)
            assert await code_of(_drain(streaming)) == grpc.StatusCode.UNAUTHENTICATED


async def _drain(call: Any) -> None:
    async for _ in call:
        pass


async def test_admin_methods_need_an_admin_key(suite: Any) -> None:
    """GATEWAY_ADMIN_METHODS (the recommender's RetrainModel and UpsertTracks by default; the Echo test service's
    ClientStream here) answer PERMISSION_DENIED to other keys; an admin key calls everything."""
    admin = "/maas.testing.v1.Echo/ClientStream"
    async with gateway(suite.upstreams(), api_keys="user-key", admin_api_keys="root-key",
                       admin_methods=admin) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            echo = pb_grpc.EchoStub(ch)

            def client_stream(key: str) -> Any:
                return echo.ClientStream(iter([pb.EchoRequest(text="a")]), metadata=(("x-api-key", key),), timeout=5)

            denied = await code_of(client_stream("user-key"))
            assert denied == grpc.StatusCode.PERMISSION_DENIED
            assert (await client_stream("root-key")).text
            assert (await unary(address, (("x-api-key", "user-key"),))).text == "k"  # the rest stays open to it
            assert (await unary(address, (("x-api-key", "root-key"),))).text == "k"


async def test_health_watches_have_their_own_budget(suite: Any) -> None:
    """Watches need no key, so they must not use up GATEWAY_MAX_CONCURRENT_RPCS: with one call allowed and two
    watches open, a keyed call still goes through; a watch beyond GATEWAY_MAX_HEALTH_WATCHES is refused."""
    async with gateway(suite.upstreams(), api_keys="k1", max_concurrent_rpcs=1, max_health_watches=2) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=20) for _ in range(2)]
            for w in watches:
                assert (await w.read()).status == health_pb2.HealthCheckResponse.SERVING
            assert (await unary(address, (("x-api-key", "k1"),))).text == "k"
            third = health.Watch(health_pb2.HealthCheckRequest(), timeout=5)
            assert await third.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for w in watches:
                w.cancel()


async def test_rate_limit_per_key_with_retry_info(suite: Any) -> None:
    async with gateway(suite.upstreams(), api_keys="a,b", rate_limit_per_s=2, rate_limit_burst=2) as (_, address):
        async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as ch:
            stub = pb_grpc.EchoStub(ch)
            key_a = (("authorization", "Bearer a"),)
            for _ in range(2):
                await stub.Unary(pb.EchoRequest(), metadata=key_a, timeout=5)
            call = stub.Unary(pb.EchoRequest(), metadata=key_a, timeout=5)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "rate limit of 2 calls/s" in info.value.details() and "retry after" in info.value.details()
            retry = error_details_pb2.RetryInfo()
            assert (await rpc_status.aio.from_call(call)).details[0].Unpack(retry)
            delay = retry.retry_delay.ToMilliseconds() / 1000
            assert 0.05 < delay <= 0.5
            # another key has its own bucket
            await stub.Unary(pb.EchoRequest(), metadata=(("x-api-key", "b"),), timeout=5)
            await asyncio.sleep(delay + 0.05)  # the hint is enough
            await stub.Unary(pb.EchoRequest(), metadata=key_a, timeout=5)


async def test_key_list_and_default_burst(suite: Any) -> None:
    """Keys from a spaced list with empty items; 0.5 calls/s gives a burst of one (a second's worth, at least one);
    keys never reach the log. No keys configured: none needed."""
    async with gateway(suite.upstreams(), api_keys=" key-one, key-two ,,", rate_limit_per_s=0.5) as (gw, address):
        assert (await unary(address, (("authorization", "Bearer  key-one "),))).text == "k"
        assert await code_of(unary(address, (("authorization", "bearer key-one"),))) == \
            grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await unary(address, (("x-api-key", "key-two"),))).text == "k"
        assert await code_of(unary(address, (("x-api-key", ""),))) == grpc.StatusCode.UNAUTHENTICATED
    log = gw.log()
    assert "method=/maas.testing.v1.Echo/Unary" in log  # the calls were logged, the keys were not
    assert "key-one" not in log and "key-two" not in log
    async with gateway(suite.upstreams()) as (_, address):  # off by default
        assert (await unary(address)).text == "k"


# ---- TLS -------------------------------------------------------------------------------------------------------
def client_credentials(pki: Pki, with_cert: bool = False, ca: Any = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(ca or pki.ca).read_bytes(),
        private_key=pki.client_key.read_bytes() if with_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if with_cert else None)


async def test_tls_at_the_edge(suite: Any, pki: Pki) -> None:
    async with gateway(suite.upstreams(), tls_cert_file=pki.server_cert, tls_key_file=pki.server_key) as (_, address):
        assert (await unary(address, credentials=client_credentials(pki))).text == "k"
        # plaintext to a TLS port, and TLS that does not trust the gateway's CA, both fail
        assert await code_of(unary(address)) == grpc.StatusCode.UNAVAILABLE
        assert await code_of(unary(address, credentials=client_credentials(pki, ca=pki.other_ca))) == \
            grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_at_the_edge(suite: Any, pki: Pki) -> None:
    async with gateway(suite.upstreams(), tls_cert_file=pki.server_cert, tls_key_file=pki.server_key,
                       tls_client_ca_file=pki.ca) as (_, address):
        assert (await unary(address, credentials=client_credentials(pki, with_cert=True))).text == "k"
        assert await code_of(unary(address, credentials=client_credentials(pki))) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_to_the_upstream(pki: Pki) -> None:
    async with echo_upstream(name="secure", tls_cert_file=pki.server_cert, tls_key_file=pki.server_key,
                             tls_client_ca_file=pki.ca) as up:
        upstreams = {"echo": UpstreamConfig(target=f"localhost:{up.port}")}
        async with gateway(upstreams, upstream_tls=True, upstream_ca_file=pki.ca, upstream_cert_file=pki.client_cert,
                           upstream_key_file=pki.client_key) as (_, address):
            reply = await unary(address)
            assert (reply.text, reply.served_by) == ("k", "secure")
        # without a client certificate the upstream refuses the connection: UNAVAILABLE, quickly
        async with gateway(upstreams, upstream_tls=True, upstream_ca_file=pki.ca,
                           discovery_timeout_s=0.5) as (_, address):
            assert await code_of(unary(address)) == grpc.StatusCode.UNAVAILABLE


async def test_upstream_certificate_name_is_checked(pki: Pki) -> None:
    """An upstream whose certificate names it echo.maas.internal, reached by address: the name must be given."""
    async with echo_upstream(name="named", tls_cert_file=pki.named_cert, tls_key_file=pki.named_key) as up:
        upstreams = {"echo": UpstreamConfig(target=up.address)}
        async with gateway(upstreams, upstream_tls=True, upstream_ca_file=pki.ca,
                           discovery_timeout_s=0.5) as (_, address):
            assert await code_of(unary(address)) == grpc.StatusCode.UNAVAILABLE  # 127.0.0.1 is not in the cert
        async with gateway(upstreams, upstream_tls=True, upstream_ca_file=pki.ca,
                           upstream_server_name="echo.maas.internal") as (_, address):
            assert (await unary(address)).served_by == "named"


@pytest.mark.parametrize("settings, message", [
    ({"tls_cert_file": "server_cert"}, "GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE go together"),
    ({"tls_client_ca_file": "ca"}, "GATEWAY_TLS_CLIENT_CA_FILE (mutual TLS) needs GATEWAY_TLS_CERT_FILE"),
    ({"upstream_ca_file": "ca"}, "need GATEWAY_UPSTREAM_TLS=true"),
    ({"upstream_tls": True, "upstream_cert_file": "client_cert"}, "GATEWAY_UPSTREAM_CERT_FILE and "
                                                                  "GATEWAY_UPSTREAM_KEY_FILE go together"),
    ({"tls_cert_file": "server_cert", "tls_key_file": "missing"}, "GATEWAY_TLS_KEY_FILE='missing': cannot be read"),
])
def test_tls_settings_are_checked(pki: Pki, settings: dict, message: str) -> None:
    paths = {name: str(getattr(pki, value)) if isinstance(value, str) and hasattr(pki, value) else value
             for name, value in settings.items()}
    done = gateway_exit(**paths)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize("probe", ["python", "binary"])
async def test_healthcheck_cli_speaks_tls(suite: Any, pki: Pki, probe: str) -> None:
    """The containers' health checks work against a gateway with mutual TLS at the edge: the runtime's module (the
    services' images) and the gateway's own `maas-gateway healthcheck` (its image has no Python)."""
    async with gateway(suite.upstreams(), tls_cert_file=pki.server_cert, tls_key_file=pki.server_key,
                       tls_client_ca_file=pki.ca) as (_, address):
        tls = ["--tls-ca-file", str(pki.ca), "--tls-cert-file", str(pki.client_cert),
               "--tls-key-file", str(pki.client_key)]
        ok = await _healthcheck(probe, "--address", address, *tls)
        assert ok.returncode == 0, ok.stderr
        assert f"{address} (server): SERVING" in ok.stdout
        echo = await _healthcheck(probe, "--address", address, "--service", "maas.testing.v1.Echo", *tls)
        assert echo.returncode == 0, echo.stderr
        unknown = await _healthcheck(probe, "--address", address, "--service", "maas.nowhere.v1.Nothing", *tls)
        assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
        assert (await _healthcheck(probe, "--address", address, "--timeout", "2")).returncode == 1  # plaintext: refused


async def _healthcheck(probe: str, *args: str) -> Any:
    import subprocess
    import sys

    from maas_gateway import binary

    python = [sys.executable, "-m", "maas_runtime.healthcheck"]
    command = [str(binary()), "healthcheck"] if probe == "binary" else python
    return await asyncio.to_thread(subprocess.run, [*command, *args], capture_output=True, text=True, timeout=60)


# ---- between the hops ------------------------------------------------------------------------------------------
async def test_services_answer_only_callers_with_the_internal_token() -> None:
    """<PREFIX>INTERNAL_TOKEN on a service: calls without it (a caller that goes around the gateway) are
    UNAUTHENTICATED, health checks stay open to probes; the gateway adds GATEWAY_UPSTREAM_TOKEN to every upstream
    call (discovery and reflection too) and never passes a caller's own token on."""
    async with echo_upstream(internal_token="s3cret") as up:
        assert await code_of(unary(up.address)) == grpc.StatusCode.UNAUTHENTICATED
        assert await code_of(unary(up.address, (("x-maas-internal-token", "guess"),))) == \
            grpc.StatusCode.UNAUTHENTICATED
        assert (await unary(up.address, (("x-maas-internal-token", "s3cret"),))).text == "k"
        async with grpc.aio.insecure_channel(up.address) as ch:
            assert (await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)).status \
                == health_pb2.HealthCheckResponse.SERVING
        async with gateway({"echo": up.address}, upstream_token="s3cret") as (_, address):
            reply = await unary(address, (("x-maas-internal-token", "forged"),))
            assert reply.text == "k" and reply.metadata["x-maas-internal-token"] == "s3cret"
        async with gateway({"echo": up.address}, upstream_token="wrong") as (gw, address):
            # a gateway with the wrong token cannot learn what the upstream serves: its callers are told to retry
            # (UNAVAILABLE), its log says why
            assert await code_of(unary(address)) == grpc.StatusCode.UNAVAILABLE
            assert "x-maas-internal-token metadata is missing or wrong" in gw.log()
