"""Which upstream answers a call: typed services by service name, KServe v2 by model name.

- ``/<package.Service>/<Method>`` goes to the upstream whose reflection listed the service (or whose
  ``GATEWAY_<NAME>_SERVICES`` names it), in the shape the upstream's descriptors give the method. An unknown
  service or method is UNIMPLEMENTED (UNAVAILABLE instead while an upstream has not been asked yet).
- ``inference.GRPCInferenceService`` (the Open Inference Protocol, which every model server of the suite
  speaks for its models): ModelInfer, ModelMetadata and ModelReady go to the upstream that serves the model.
  Only the model name is read from the request (field 1 of all three, read off the wire); the owner of a name
  is found by asking each KServe upstream's ModelMetadata once, then remembered. An unknown model is
  NOT_FOUND. ServerLive, ServerReady and ServerMetadata describe the gateway and are answered here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Callable

import grpc
from google.protobuf import descriptor_pb2

from maas_gateway.kserve import KSERVE
from maas_gateway.proxy import forward_unary, method_handler
from maas_gateway.upstream import SERVING, Shape, Upstream
from maas_runtime.errors import InvalidArgument, NotFound, Unavailable
from maas_runtime.wire import string_field

log = logging.getLogger("maas.gateway.router")

_BY_MODEL = frozenset({"ModelInfer", "ModelMetadata", "ModelReady"})
_MODEL_FIELD = {"ModelInfer": "model_name", "ModelMetadata": "name", "ModelReady": "name"}
LOOKUP_TIMEOUT_S = 2.0
NEGATIVE_TTL_S = 1.0  # an unknown model name is not asked about again for this long
MAX_NEGATIVE = 4096
MAX_HANDLERS = 4096


class ModelDirectory:
    """Model name -> the KServe upstream serving it, learnt on first use and remembered."""

    def __init__(self, upstreams: Callable[[], list[Upstream]]) -> None:
        self._upstreams = upstreams
        self._owner: dict[str, Upstream] = {}
        self._missing: dict[str, float] = {}
        self._pending: dict[str, asyncio.Task[Upstream]] = {}

    def known(self) -> dict[str, str]:
        return {name: u.name for name, u in sorted(self._owner.items())}

    def forget(self, name: str) -> None:
        self._owner.pop(name, None)

    def clear(self) -> None:
        self._owner.clear()
        self._missing.clear()

    async def owner(self, name: str) -> Upstream:
        found = self._owner.get(name)
        if found is not None:
            return found
        if self._missing.get(name, 0.0) > time.monotonic():
            raise self._not_found(name)
        task = self._pending.get(name)
        if task is None:  # one lookup per name however many callers wait for it
            task = self._pending[name] = asyncio.ensure_future(self._lookup(name))
            task.add_done_callback(lambda _: self._pending.pop(name, None))
        return await asyncio.shield(task)

    async def _lookup(self, name: str) -> Upstream:
        candidates = self._upstreams()
        answers = await asyncio.gather(*(u.has_model(name, LOOKUP_TIMEOUT_S) for u in candidates),
                                       return_exceptions=True)
        for upstream, answer in zip(candidates, answers):
            if answer is True:
                self._owner[name] = upstream
                log.info("model routed", extra={"model": name, "upstream": upstream.name})
                return upstream
        down = [u.name for u, a in zip(candidates, answers) if isinstance(a, BaseException)]
        if down:
            raise Unavailable(f"cannot tell which service serves model {name!r}: {', '.join(down)} "
                              f"unreachable; retry later")
        if len(self._missing) >= MAX_NEGATIVE:
            self._missing.clear()
        self._missing[name] = time.monotonic() + NEGATIVE_TTL_S
        raise self._not_found(name)

    def _not_found(self, name: str) -> NotFound:
        return NotFound(f"model {name!r} is not served by any service behind this gateway")


class Router(grpc.GenericRpcHandler):
    """The gateway's generic handler: a method name in, a forwarding handler (or None: UNIMPLEMENTED) out."""

    def __init__(self, upstreams: list[Upstream], local: dict[str, grpc.RpcMethodHandler] | None = None) -> None:
        self.upstreams = upstreams
        self.local = local or {}  # methods answered by the gateway itself (KServe server-level calls)
        self.routes: dict[str, Upstream] = {}
        self.kserve: list[Upstream] = []
        self.models = ModelDirectory(lambda: self.kserve)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.on_change: list[Callable[[], None]] = []

    # ---- the routing table -----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Recompute the table from what the upstreams said (called after each discovery that changed)."""
        routes: dict[str, Upstream] = {}
        kserve: list[Upstream] = []
        for upstream in self.upstreams:
            for service in upstream.services:
                if service == KSERVE:
                    kserve.append(upstream)
                elif service in routes:
                    log.warning("service served by two upstreams; the first wins", extra={
                        "service": service, "first": routes[service].name, "second": upstream.name})
                else:
                    routes[service] = upstream
        if [u.name for u in kserve] != [u.name for u in self.kserve]:
            self.models.clear()  # model owners are asked again among the new set
        self.routes, self.kserve = routes, kserve
        self._handlers = {}
        log.info("routes", extra={"routes": {s: u.name for s, u in sorted(routes.items())},
                                  "kserve": [u.name for u in kserve],
                                  "undiscovered": [u.name for u in self.undiscovered()]})
        for callback in self.on_change:
            callback()

    def undiscovered(self) -> list[Upstream]:
        return [u for u in self.upstreams if u.discovery is None]

    def service_names(self) -> list[str]:
        return sorted({*self.routes, *([KSERVE] if self.kserve else [])})

    def upstreams_of(self, service: str) -> list[Upstream]:
        return list(self.kserve) if service == KSERVE else [self.routes[service]] if service in self.routes else []

    def files(self) -> list[descriptor_pb2.FileDescriptorProto]:
        return [f for u in self.upstreams if u.discovery for f in u.discovery.files]

    # ---- grpc.GenericRpcHandler --------------------------------------------------------------------------
    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = self._build(method)
            if handler is not None and handler is not _UNAVAILABLE and len(self._handlers) < MAX_HANDLERS:
                self._handlers[method] = handler  # known methods (any name, for a service without reflection)
        return handler

    def _build(self, method: str) -> grpc.RpcMethodHandler | None:
        service, _, name = method.lstrip("/").partition("/")
        if service == KSERVE and self.kserve:
            if method in self.local:
                return self.local[method]
            if name in _BY_MODEL:
                return grpc.unary_unary_rpc_method_handler(self._by_model(method, _MODEL_FIELD[name]))
            return None
        upstream = self.routes.get(service)
        if upstream is None:
            return _UNAVAILABLE if self.undiscovered() else None
        shapes = upstream.services.get(service)
        if shapes is None:  # configured without reflection: every shape travels as a bidirectional stream
            return method_handler(upstream, method, Shape.STREAM_STREAM)
        shape = shapes.get(name)
        return method_handler(upstream, method, shape) if shape is not None else None

    def _by_model(self, method: str, field: str) -> Callable[..., Any]:
        async def behavior(request: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                model = string_field(request, 1)
            except ValueError:
                raise InvalidArgument("request", f"could not be parsed as {method.rsplit('/', 1)[1]}Request") from None
            if not model:
                raise InvalidArgument(field, "is required: the gateway routes by model name")
            upstream = await self.models.owner(model)
            try:
                return await forward_unary(upstream, method, request, context)
            except grpc.aio.AbortError:
                if context.code() == grpc.StatusCode.NOT_FOUND:
                    self.models.forget(model)  # moved or removed: ask again next time
                raise

        return behavior

    def kserve_ready(self, status: Callable[[Upstream, str], int]) -> bool:
        return bool(self.kserve) and all(status(u, KSERVE) == SERVING for u in self.kserve)


async def _unavailable(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    raise Unavailable("this service is not known yet: an upstream has not been reachable to say what it "
                      "serves; retry later")
    yield  # an async generator, as stream handlers are  # pragma: no cover


_UNAVAILABLE = grpc.stream_stream_rpc_method_handler(_unavailable)
