"""Server bootstrap shared by every service: grpc.aio server, interceptor, health, reflection,
Open Inference Protocol for the models, Prometheus endpoint, SIGTERM → graceful stop.

    server = ModelServer(settings, name="nlp-analysis")
    server.add_service(nlp_pb2_grpc.add_NlpAnalysisServicer_to_server, servicer, "maas.nlp.v1.NlpAnalysis")
    server.add_models(models)           # also served over inference.GRPCInferenceService
    await server.run(load=warm_up)      # NOT_SERVING until load() returns, then SERVING until SIGTERM

A server without models and typed servicers (the gateway) uses the same bootstrap: ``add_generic_handler``
for handlers that serve methods known only at run time, extra ``interceptors`` after the runtime's own, and
``reflection=False`` when it registers a reflection servicer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from maas_runtime import metrics
from maas_runtime.interceptors import ServiceInterceptor
from maas_runtime.settings import ServerSettings

if TYPE_CHECKING:  # onnxruntime and numpy stay out of servers without models (the gateway)
    from maas_runtime.onnx_model import OnnxModel

log = logging.getLogger("maas.server")

KSERVE_SERVICE = "inference.GRPCInferenceService"


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files; None for plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    pair = (settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())
    client_ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


class ModelServer:
    def __init__(self, settings: ServerSettings, name: str, version: str = "1", *,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = (), reflection: bool = True) -> None:
        self.settings = settings
        self.name = name
        self.version = version
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
            # Keepalive: ping a connection idle this long and close it when the ack does not come back in time,
            # so a client that vanished without closing (half-open TCP) gives its calls, and its generation
            # slot, back; and accept the pings of clients that do the same (the gateway's upstream channels).
            ("grpc.keepalive_time_ms", int(settings.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout_s * 1000)),
            ("grpc.http2.ping_timeout_ms", int(settings.keepalive_timeout_s * 1000)),  # (newer gRPC's name for it)
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
            ("grpc.http2.min_ping_interval_without_data_ms", int(settings.keepalive_time_s * 1000)),
        ]
        if settings.max_connection_age_s is not None:
            options += [("grpc.max_connection_age_ms", int(settings.max_connection_age_s * 1000)),
                        ("grpc.max_connection_age_grace_ms", int(settings.max_connection_age_grace_s * 1000))]
        # The runtime's interceptor is the outermost: errors raised by the others are mapped, logged and counted.
        token = settings.internal_token.get_secret_value() if settings.internal_token else None
        self.server = grpc.aio.server(interceptors=[ServiceInterceptor(token), *interceptors], options=options,
                                      maximum_concurrent_rpcs=settings.max_concurrent_rpcs)
        self.reflection = reflection
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.services: list[str] = []
        self.models: dict[str, OnnxModel] = {}
        self.ready = False
        self.port: int | None = None
        self._stopped = asyncio.Event()
        self._kserve_added = False

    def add_service(self, add_to_server: Callable[[Any, grpc.aio.Server], None], servicer: Any, name: str) -> None:
        add_to_server(servicer, self.server)
        self.services.append(name)

    def add_generic_handler(self, handler: grpc.GenericRpcHandler) -> None:
        """Serve methods resolved at call time (looked up after the registered services, health, reflection)."""
        self.server.add_generic_rpc_handlers((handler,))

    def add_models(self, models: Iterable[OnnxModel]) -> None:
        """Publish models over the Open Inference Protocol (KServe v2) beside the typed API."""
        for m in models:
            self.models[m.name] = m
        if not self._kserve_added:
            from inference import grpc_service_pb2_grpc

            from maas_runtime.kserve import KServeServicer

            servicer = KServeServicer(self.models, self.name, self.version, lambda: self.ready)
            self.add_service(grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server, servicer,
                             KSERVE_SERVICE)
            self._kserve_added = True

    async def _set_health(self, status: int) -> None:
        for name in ["", *self.services]:
            await self.health.set(name, status)

    async def start(self) -> int:
        """Bind and start answering; every service reports NOT_SERVING until ``set_ready``."""
        if self.reflection:
            reflection.enable_server_reflection(
                [*self.services, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server)
        credentials = server_credentials(self.settings)
        if credentials is None:
            self.port = self.server.add_insecure_port(self.settings.address)
        else:
            self.port = self.server.add_secure_port(self.settings.address, credentials)
        if not self.port:
            raise RuntimeError(f"cannot bind {self.settings.address}")
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        if self.settings.metrics_port is not None:
            metrics.serve_metrics(self.settings.metrics_port, self.settings.host)
        log.info("listening", extra={"service": self.name, "address": f"{self.settings.host}:{self.port}",
                                     "tls": "mutual" if self.settings.tls_client_ca_file else
                                            "on" if credentials is not None else "off",
                                     "services": self.services, "metrics_port": self.settings.metrics_port})
        return self.port

    async def set_ready(self) -> None:
        self.ready = True
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"service": self.name, "models": {
            n: {"version": m.version, "provider": m.provider} for n, m in self.models.items()}})

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING (so balancers drain us), let in-flight RPCs finish, then stop."""
        self.ready = False
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.grace_seconds if grace is None else grace)
        self._stopped.set()
        log.info("stopped", extra={"service": self.name})

    async def run(self, load: Callable[[], Awaitable[None]], on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        """Start, load and warm the models, serve until SIGTERM/SIGINT, stop gracefully."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await self.start()
        try:
            await load()
            await self.set_ready()
            await stopping.wait()
            log.info("signal received, draining", extra={"grace_s": self.settings.grace_seconds})
        finally:
            await self.stop()
            if on_stop is not None:
                await on_stop()
