"""The one server interceptor: request id, access log, per-method metrics, and error mapping.

Every RPC of every shape (unary, server-, client-, bidirectional streaming) goes through it:
- the request id comes from the ``x-request-id`` metadata or is made here, is put in a contextvar for the
  logs and is sent back in the trailing metadata;
- a ``ServiceError`` raised anywhere below becomes its status with google.rpc details;
- a request whose bytes protobuf refuses (invalid UTF-8 in a string field) becomes INVALID_ARGUMENT naming
  the field instead of grpc's INTERNAL;
- anything unexpected is logged with its traceback and answered INTERNAL with a generic message.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import inspect
import logging
import time
import uuid
from typing import Any, AsyncIterator, Callable

import grpc

from maas_runtime import metrics
from maas_runtime.errors import InvalidArgument, ServiceError, Unauthenticated
from maas_runtime.logs import request_id
from maas_runtime.wire import invalid_utf8_field

log = logging.getLogger("maas.access")

REQUEST_ID = "x-request-id"


class _Undecodable:
    """Stands in for a request protobuf could not parse; the handler wrapper turns it into the error."""

    def __init__(self, error: ServiceError) -> None:
        self.error = error


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
            field = invalid_utf8_field(descriptor, data) if descriptor is not None else None
            if field:
                return _Undecodable(InvalidArgument(field, "is not valid UTF-8"))
            return _Undecodable(InvalidArgument("request", "could not be parsed as " +
                                                (descriptor.full_name if descriptor else "the request message")))

    return parse


def _check(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise request.error
    return request


async def _checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _check(request)


@functools.lru_cache(maxsize=4096)
def _in_flight(method: str) -> Any:  # the labelled child, looked up once per method (labels() takes a lock)
    return metrics.RPC_IN_FLIGHT.labels(method)


@functools.lru_cache(maxsize=4096)
def _latency(method: str, code: str) -> Any:
    return metrics.RPC_LATENCY.labels(method, code)


class _Call:
    """Bookkeeping for one RPC: request id, timing, status, and the error mapping."""

    def __init__(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.method = method
        self.context = context
        incoming = dict(context.invocation_metadata() or ())
        self.request_id = str(incoming.get(REQUEST_ID) or uuid.uuid4().hex[:16])
        self.token = request_id.set(self.request_id)
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        _in_flight(method).inc()
        context.set_trailing_metadata(((REQUEST_ID, self.request_id),))

    async def fail(self, exc: BaseException) -> None:
        """Map an exception to a status and abort the RPC (context.abort raises)."""
        if isinstance(exc, ServiceError):
            self.code = exc.code
            status = exc.to_status()
            log.info("rejected", extra={"method": self.method, "code": exc.code.name, "reason": exc.message})
            await self.context.abort(status.code, status.details,
                                     tuple(status.trailing_metadata) + ((REQUEST_ID, self.request_id),))
        self.code = grpc.StatusCode.INTERNAL
        log.error("unhandled error", exc_info=exc, extra={"method": self.method})
        await self.context.abort(grpc.StatusCode.INTERNAL,
                                 f"internal error; quote request id {self.request_id} when reporting it",
                                 ((REQUEST_ID, self.request_id),))

    def finish(self, exc: BaseException | None = None) -> None:
        if isinstance(exc, asyncio.CancelledError):
            self.code = grpc.StatusCode.CANCELLED
        elif isinstance(exc, grpc.aio.AbortError) and self.code == grpc.StatusCode.OK:
            self.code = self.context.code() or grpc.StatusCode.UNKNOWN
        elapsed = time.perf_counter() - self.started
        code = self.code.name if isinstance(self.code, grpc.StatusCode) else str(self.code)
        _in_flight(self.method).dec()
        _latency(self.method, code).observe(elapsed)
        log.info("rpc", extra={"method": self.method, "code": code, "ms": round(elapsed * 1e3, 2)})
        try:
            request_id.reset(self.token)
        except ValueError:  # a cancelled stream is closed from grpc's task, in another context: nothing to reset
            pass


def _wrap_unary_response(method: str, behavior: Callable, stream_in: bool) -> Callable:
    async def handler(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        call = _Call(method, context)
        exc: BaseException | None = None
        try:
            arg = _checked_stream(request_or_iterator) if stream_in else _check(request_or_iterator)
            return await behavior(arg, context)
        except (asyncio.CancelledError, grpc.aio.AbortError) as e:
            exc = e
            raise
        except BaseException as e:  # noqa: BLE001
            exc = e
            await call.fail(e)
        finally:
            call.finish(exc)

    return handler


def _wrap_stream_response(method: str, behavior: Callable, stream_in: bool) -> Callable:
    async def handler(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = _Call(method, context)
        exc: BaseException | None = None
        try:
            arg = _checked_stream(request_or_iterator) if stream_in else _check(request_or_iterator)
            async for response in behavior(arg, context):
                yield response
        except (asyncio.CancelledError, grpc.aio.AbortError, GeneratorExit) as e:
            exc = e if not isinstance(e, GeneratorExit) else asyncio.CancelledError()
            raise
        except BaseException as e:  # noqa: BLE001
            exc = e
            await call.fail(e)
        finally:
            call.finish(exc)

    return handler


INTERNAL_TOKEN = "x-maas-internal-token"
_OPEN_TO_ALL = "/grpc.health.v1.Health/"  # orchestrators' probes carry no token


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """``internal_token``: when set, every call but health checks must carry it (``x-maas-internal-token``, which
    the gateway and the suite's own clients add): the services then answer only the gateway and each other."""

    def __init__(self, internal_token: str | None = None) -> None:
        # method -> (handler, its wrapper): a method's handler is the same object call after call, so it is
        # wrapped once, not on every call
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._token = internal_token.encode() if internal_token else None
        self._refusals: dict[str, Any] = {}

    def _admitted(self, details: grpc.HandlerCallDetails) -> bool:
        if self._token is None or details.method.startswith(_OPEN_TO_ALL):
            return True
        sent = [v for k, v in details.invocation_metadata or () if k == INTERNAL_TOKEN]
        return any(hmac.compare_digest(v.encode() if isinstance(v, str) else v, self._token) for v in sent)

    def _refusal(self, method: str, handler: Any) -> Any:
        """A handler of ``handler``'s shape that answers UNAUTHENTICATED (through the same mapping and logs)."""
        if method not in self._refusals:
            async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
                raise Unauthenticated("this service answers the suite's gateway and services only "
                                      f"(the {INTERNAL_TOKEN} metadata is missing or wrong)")

            kwargs = dict(request_deserializer=_safe_deserializer(handler.request_deserializer),
                          response_serializer=handler.response_serializer)
            make = (grpc.unary_unary_rpc_method_handler if handler.unary_unary else
                    grpc.stream_unary_rpc_method_handler if handler.stream_unary else
                    grpc.unary_stream_rpc_method_handler if handler.unary_stream else
                    grpc.stream_stream_rpc_method_handler)
            stream_in = bool(handler.stream_unary or handler.stream_stream)
            self._refusals[method] = make(_wrap_unary_response(method, refuse, stream_in), **kwargs)
        return self._refusals[method]

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        if not self._admitted(details):
            return self._refusal(details.method, handler)
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        if len(self._wrapped) < 4096:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        kwargs = dict(request_deserializer=_safe_deserializer(handler.request_deserializer),
                      response_serializer=handler.response_serializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary_response(method, handler.unary_unary, False), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _wrap_unary_response(method, handler.stream_unary, True), **kwargs)
        # Streaming responses come from an async generator, or from a coroutine that writes them with
        # context.write (grpc's own aio HealthServicer.Watch does): each kind keeps its shape.
        if handler.unary_stream:
            wrap = _wrap_unary_response if inspect.iscoroutinefunction(handler.unary_stream) else _wrap_stream_response
            return grpc.unary_stream_rpc_method_handler(wrap(method, handler.unary_stream, False), **kwargs)
        if handler.stream_stream:
            wrap = _wrap_unary_response if inspect.iscoroutinefunction(handler.stream_stream) else _wrap_stream_response
            return grpc.stream_stream_rpc_method_handler(wrap(method, handler.stream_stream, True), **kwargs)
        return handler
