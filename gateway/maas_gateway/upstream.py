"""One upstream: its channel, what it serves (discovered through its server reflection), its health, and the
multicallables the proxy forwards bytes with.

The channel balances round robin over every address of the target (``dns:///name:port`` gives one per
replica, as a Kubernetes headless Service does; an ``ipv4:a,b`` list gives a fixed set) and, with client-side
health checking, skips replicas whose ``grpc.health.v1`` says NOT_SERVING (loading, draining). A short
reconnect backoff makes a restarted upstream usable again within ``reconnect_backoff_max_s``; a call while no
replica is connected fails at once with UNAVAILABLE (no wait-for-ready).
"""

from __future__ import annotations

import enum
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maas_gateway.kserve import KSERVE, metadata_request
from maas_gateway.settings import GatewaySettings, UpstreamConfig

log = logging.getLogger("maas.gateway.upstream")

HEALTH_SERVICE = "grpc.health.v1.Health"
# Served by the gateway itself, never routed to an upstream.
OWN_SERVICES = frozenset({HEALTH_SERVICE, "grpc.reflection.v1alpha.ServerReflection",
                          "grpc.reflection.v1.ServerReflection"})
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Shape(enum.Enum):
    UNARY_UNARY = (False, False)
    UNARY_STREAM = (False, True)
    STREAM_UNARY = (True, False)
    STREAM_STREAM = (True, True)

    @classmethod
    def of(cls, method: descriptor_pb2.MethodDescriptorProto) -> "Shape":
        return cls((bool(method.client_streaming), bool(method.server_streaming)))


@dataclass(frozen=True)
class Discovery:
    """What an upstream serves: service -> method name -> shape (None: methods unknown, forward any as a
    bidirectional stream), and the proto files that describe them (for the gateway's reflection)."""

    services: dict[str, dict[str, Shape] | None]
    files: tuple[descriptor_pb2.FileDescriptorProto, ...] = field(default=(), compare=False)


def channel_credentials(settings: GatewaySettings) -> grpc.ChannelCredentials | None:
    """TLS (mutual with a client certificate) to the upstreams, or None for plaintext."""
    if not settings.upstream_tls:
        return None
    read = lambda p: p.read_bytes() if p is not None else None  # noqa: E731
    return grpc.ssl_channel_credentials(root_certificates=read(settings.upstream_ca_file),
                                        private_key=read(settings.upstream_key_file),
                                        certificate_chain=read(settings.upstream_cert_file))


def channel_options(settings: GatewaySettings) -> list[tuple[str, Any]]:
    service_config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if settings.upstream_health_check:
        service_config["healthCheckConfig"] = {"serviceName": ""}
    options: list[tuple[str, Any]] = [
        ("grpc.service_config", json.dumps(service_config)),
        ("grpc.enable_http_proxy", 0),  # upstreams are internal: never through an HTTP proxy
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 1000),  # also the shortest connect timeout
        ("grpc.max_reconnect_backoff_ms", int(settings.reconnect_backoff_max_s * 1000)),
        ("grpc.dns_min_time_between_resolutions_ms", 2000),  # a replaced pod's new address is found quickly
        ("grpc.primary_user_agent", "maas-gateway"),
    ]
    if settings.upstream_server_name:
        options.append(("grpc.ssl_target_name_override", settings.upstream_server_name))
    return options


def parse_files(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, dict[str, Shape]]:
    """service full name -> method name -> shape, for every service the files define."""
    out: dict[str, dict[str, Shape]] = {}
    for f in files:
        for svc in f.service:
            name = f"{f.package}.{svc.name}" if f.package else svc.name
            out[name] = {m.name: Shape.of(m) for m in svc.method}
    return out


class Upstream:
    def __init__(self, name: str, config: UpstreamConfig, settings: GatewaySettings,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self.name = name
        self.config = config
        self.target = config.target
        options = channel_options(settings)
        self.channel = (grpc.aio.secure_channel(self.target, credentials, options=options) if credentials
                        else grpc.aio.insecure_channel(self.target, options=options))
        self.discovery: Discovery | None = None  # None until the first successful discovery
        self._calls: dict[tuple[str, Shape], Any] = {}
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self._reflection = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        self._last_warning = 0.0

    def __repr__(self) -> str:
        return f"Upstream({self.name!r}, {self.target!r})"

    @property
    def services(self) -> dict[str, dict[str, Shape] | None]:
        return self.discovery.services if self.discovery else {}

    def multicallable(self, method: str, shape: Shape) -> Any:
        """Bytes in, bytes out (no serializers): the gateway never decodes what it forwards."""
        key = (method, shape)
        found = self._calls.get(key)
        if found is None:
            factory = {Shape.UNARY_UNARY: self.channel.unary_unary, Shape.UNARY_STREAM: self.channel.unary_stream,
                       Shape.STREAM_UNARY: self.channel.stream_unary,
                       Shape.STREAM_STREAM: self.channel.stream_stream}[shape]
            found = self._calls[key] = factory(method, _registered_method=True)
        return found

    # ---- discovery -------------------------------------------------------------------------------------
    async def discover(self, timeout: float) -> Discovery:
        """Ask the upstream's reflection what it serves; raises grpc.aio.AioRpcError when it cannot answer."""
        names = list(self.config.services)
        try:
            if not names:
                listed = await self._reflect([reflection_pb2.ServerReflectionRequest(list_services="")], timeout)
                names = sorted(s.name for r in listed for s in r.list_services_response.service
                               if s.name not in OWN_SERVICES)
            replies = await self._reflect(
                [reflection_pb2.ServerReflectionRequest(file_containing_symbol=n) for n in names], timeout)
        except grpc.aio.AioRpcError as e:
            if not self.config.services or e.code() not in (grpc.StatusCode.UNIMPLEMENTED,
                                                            grpc.StatusCode.NOT_FOUND):
                raise
            # services configured and no reflection: forward their methods without knowing the shapes
            return Discovery({n: None for n in names})
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        for reply in replies:
            for blob in reply.file_descriptor_response.file_descriptor_proto:
                fdp = descriptor_pb2.FileDescriptorProto.FromString(blob)
                files.setdefault(fdp.name, fdp)
        shapes = parse_files(files.values())
        return Discovery({n: shapes.get(n) for n in names}, tuple(files.values()))

    async def _reflect(self, requests: list[Any], timeout: float) -> list[Any]:
        call = self._reflection.ServerReflectionInfo(iter(requests), timeout=timeout)
        return [reply async for reply in call]

    # ---- health ----------------------------------------------------------------------------------------
    async def check(self, service: str, timeout: float) -> int:
        """The upstream's grpc.health.v1 status for ``service`` (its overall one when it has none for that name);
        NOT_SERVING when it cannot be asked. A server without the health service counts as SERVING."""
        for name in (service, ""):
            try:
                reply = await self._health.Check(health_pb2.HealthCheckRequest(service=name), timeout=timeout)
                return reply.status
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.NOT_FOUND and name:
                    continue
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return SERVING
                return NOT_SERVING
        return NOT_SERVING

    async def has_model(self, model: str, timeout: float) -> bool:
        """Whether this upstream serves ``model`` over KServe v2 (its ModelMetadata answers, or says NOT_FOUND);
        raises grpc.aio.AioRpcError when it cannot tell."""
        call = self.multicallable(f"/{KSERVE}/ModelMetadata", Shape.UNARY_UNARY)
        try:
            await call(metadata_request(model), timeout=timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return True

    def warn_unreachable(self, details: str) -> None:
        """Log why calls fail, at most every few seconds (a down upstream fails every call at once)."""
        now = time.monotonic()
        if now - self._last_warning > 5.0:
            self._last_warning = now
            log.warning("upstream unreachable", extra={"upstream": self.name, "target": self.target,
                                                       "details": details})

    async def close(self) -> None:
        await self.channel.close()
