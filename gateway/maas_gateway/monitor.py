"""Keeps the routing table and the gateway's health in step with the upstreams.

Every ``health_interval_s``: an upstream never discovered (unreachable at start) is asked again, one that was
discovered is asked again every ``REDISCOVER_S`` (a redeployed upstream may serve new methods), and each routed
service's health is read from its upstream (``grpc.health.v1`` Check, through the balanced channel: SERVING
when a replica serves it). The gateway's own health then has one entry per routed service: SERVING while every
upstream routing it does, NOT_SERVING otherwise. Its overall status ("") is the gateway's: SERVING once the
first discovery round is over, whatever the upstreams say (a gateway with one service down still routes the
others; its per-service entries tell which is down).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import Gauge

from maas_gateway.router import Router
from maas_gateway.upstream import NOT_SERVING, SERVING, Upstream

log = logging.getLogger("maas.gateway.monitor")

UPSTREAM_SERVING = Gauge("maas_gateway_upstream_serving", "1 while the upstream reports SERVING for the service",
                         ["upstream", "service"])
ROUTED = Gauge("maas_gateway_routed_services", "gRPC services the gateway routes", [])

REDISCOVER_S = 30.0
CHECK_TIMEOUT_S = 2.0
_NAME = health_pb2.HealthCheckResponse.ServingStatus.Name


class UpstreamMonitor:
    def __init__(self, router: Router, set_health: Callable[[str, int], object], interval_s: float) -> None:
        self.router = router
        self._set_health = set_health  # async (name, status) of the gateway's health servicer
        self.interval_s = interval_s
        self.status: dict[tuple[str, str], int] = {}  # (upstream, service) -> upstream's status
        self.published: dict[str, int] = {}  # service -> status in the gateway's health
        self._discovered_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def upstream_status(self, upstream: Upstream, service: str) -> int:
        return self.status.get((upstream.name, service), NOT_SERVING)

    # ---- discovery -----------------------------------------------------------------------------------------
    async def discover(self, upstream: Upstream, timeout: float) -> bool:
        """Ask ``upstream`` what it serves; rebuild the routes when the answer changed. False: no answer."""
        try:
            found = await upstream.discover(timeout)
        except grpc.aio.AioRpcError as e:
            if upstream.discovery is None:
                log.warning("upstream not discovered yet", extra={
                    "upstream": upstream.name, "target": upstream.target, "code": e.code().name,
                    "details": e.details()})
            return False
        self._discovered_at[upstream.name] = time.monotonic()
        if found != upstream.discovery:
            upstream.discovery = found
            log.info("upstream discovered", extra={"upstream": upstream.name, "target": upstream.target,
                                                   "services": sorted(found.services)})
            self.router.rebuild()
        return True

    async def discover_all(self, timeout: float) -> None:
        """The first round: every upstream, retried until it answers or ``timeout`` is spent."""
        deadline = time.monotonic() + timeout

        async def one(upstream: Upstream) -> None:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or await self.discover(upstream, min(CHECK_TIMEOUT_S, left)):
                    return
                await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

        await asyncio.gather(*(one(u) for u in self.router.upstreams))
        missing = [u.name for u in self.router.undiscovered()]
        if missing:
            log.warning("starting without these upstreams; asking again every health interval",
                        extra={"upstreams": missing})

    # ---- health --------------------------------------------------------------------------------------------
    async def poll(self) -> None:
        """One round: rediscover where due, read every routed service's health, publish the changes."""
        now = time.monotonic()
        due = [u for u in self.router.upstreams
               if u.discovery is None or now - self._discovered_at.get(u.name, 0.0) > REDISCOVER_S]
        if due:
            await asyncio.gather(*(self.discover(u, CHECK_TIMEOUT_S) for u in due))

        async def check(upstream: Upstream, service: str) -> None:
            status = await upstream.check(service, CHECK_TIMEOUT_S)
            key = (upstream.name, service)
            if self.status.get(key) != status:
                log.info("upstream health", extra={"upstream": upstream.name, "service": service,
                                                   "status": _NAME(status)})
            self.status[key] = status
            UPSTREAM_SERVING.labels(upstream.name, service).set(1 if status == SERVING else 0)

        await asyncio.gather(*(check(u, s) for u in self.router.upstreams for s in u.services))
        names = self.router.service_names()
        ROUTED.set(len(names))
        for gone in set(self.published) - set(names):  # no longer routed (an upstream stopped serving it)
            del self.published[gone]
            await self._set_health(gone, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        for name in names:
            upstreams = self.router.upstreams_of(name)
            status = SERVING if upstreams and all(self.upstream_status(u, name) == SERVING for u in upstreams) \
                else NOT_SERVING
            if self.published.get(name) != status:
                self.published[name] = status
                await self._set_health(name, status)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad round
                log.exception("health round failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
