"""Wires settings, upstreams, router, reflection and health into the runtime's server (for __main__ and tests).

The gateway is a ``ModelServer`` without models: the runtime gives it settings, the interceptor (request id,
access log, per-method metrics, error mapping), health, the metrics port, TLS at the edge, message size limits
and the graceful stop; the gateway adds a generic handler (the router), its own reflection servicer and, when
API keys are configured, the key interceptor.
"""

from __future__ import annotations

import logging

from grpc_reflection.v1alpha import reflection_pb2_grpc

from maas_gateway import __version__
from maas_gateway.auth import ApiKeyInterceptor
from maas_gateway.kserve import local_handlers
from maas_gateway.monitor import UpstreamMonitor
from maas_gateway.reflection import GatewayReflection
from maas_gateway.router import Router
from maas_gateway.settings import GatewaySettings
from maas_gateway.upstream import Upstream, channel_credentials
from maas_runtime.server import ModelServer

log = logging.getLogger("maas.gateway")


class GatewayApp:
    """``await app.start()`` binds, discovers the upstreams and reports SERVING; ``await app.stop()``."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        interceptors = []
        if settings.api_keys:
            interceptors.append(ApiKeyInterceptor([k.get_secret_value() for k in settings.api_keys],
                                                  settings.rate_limit_per_s, settings.burst))
        self.server = ModelServer(settings, name="gateway", version=__version__, interceptors=interceptors,
                                  reflection=False)
        self.router: Router | None = None
        self.monitor: UpstreamMonitor | None = None

    def build(self) -> Router:
        """Channels, router, reflection (inside the running event loop: grpc.aio channels bind to it)."""
        credentials = channel_credentials(self.settings)
        upstreams = [Upstream(name, config, self.settings, credentials)
                     for name, config in sorted(self.settings.upstreams.items())]
        if not upstreams:
            log.warning("no upstreams configured: set GATEWAY_<NAME>_ADDR for each service to route")
        router = Router(upstreams)
        self.monitor = UpstreamMonitor(router, self.server.health.set, self.settings.health_interval_s)
        router.local = local_handlers(lambda: router.kserve_ready(self.monitor.upstream_status), "maas-gateway",
                                      __version__)
        reflection = GatewayReflection(router.service_names)
        router.on_change.append(lambda: reflection.add_files(router.files()))
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection, self.server.server)
        self.server.add_generic_handler(router)
        self.router = router
        return router

    async def load(self) -> None:
        """The first discovery round and health poll, then the monitor keeps them current."""
        assert self.monitor is not None
        await self.monitor.discover_all(self.settings.discovery_timeout_s)
        await self.monitor.poll()
        self.monitor.start()

    async def start(self) -> int:
        """For tests and embedding: build, bind, discover, report SERVING; returns the bound port."""
        self.build()
        port = await self.server.start()
        await self.load()
        await self.server.set_ready()
        return port

    async def close(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()
        if self.router is not None:
            for upstream in self.router.upstreams:
                await upstream.close()

    async def stop(self, grace: float | None = 0) -> None:
        await self.server.stop(grace)
        await self.close()

    async def run(self) -> None:
        """Bind first (NOT_SERVING while discovering), serve until SIGTERM, drain, stop."""
        self.build()
        await self.server.run(load=self.load, on_stop=self.close)
