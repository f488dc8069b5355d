"""Optional API keys with a per-key rate limit (installed only when ``GATEWAY_API_KEYS`` is set).

A key travels as ``authorization: Bearer <key>`` or ``x-api-key: <key>``. No key or an unknown one:
UNAUTHENTICATED. A key over its token bucket: RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail saying
when a token is back. Health checks pass without a key (orchestrators and load balancers have none).
The check runs once per call, before the handler: an admitted call costs a dictionary lookup.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, AsyncIterator, Callable, Iterable

import grpc

from maas_runtime.errors import Overloaded, ServiceError, Unauthenticated

log = logging.getLogger("maas.gateway.auth")

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` banked; ``take`` answers 0 (taken) or seconds to wait."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> float:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def presented_key(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "x-api-key" and isinstance(value, str):
            return value.strip()
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
    return None


def _refusing(handler: grpc.RpcMethodHandler, error: ServiceError) -> grpc.RpcMethodHandler:
    """A handler of the same shape that raises ``error`` (the runtime's interceptor turns it into the status)."""
    async def unary_response(request: Any, context: grpc.aio.ServicerContext) -> Any:
        raise error

    async def stream_response(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        raise error
        yield  # pragma: no cover - makes this an async generator, as stream handlers are

    kwargs = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response, **kwargs)
    return grpc.stream_stream_rpc_method_handler(stream_response, **kwargs)


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, keys: Iterable[str], rate_per_s: float | None = None, burst: int = 1) -> None:
        digests = [_digest(k) for k in keys if k]
        if not digests:
            raise ValueError("ApiKeyInterceptor needs at least one key")
        # keyed by digest: looking a key up compares hashes, never the secret itself
        self._buckets: dict[bytes, TokenBucket | None] = {
            d: TokenBucket(rate_per_s, burst) if rate_per_s else None for d in digests}
        self.rate_per_s = rate_per_s

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or details.method.startswith(EXEMPT_PREFIXES):
            return handler
        key = presented_key(details.invocation_metadata)
        if key is None:
            return _refusing(handler, Unauthenticated(
                "an API key is required: send it as 'authorization: Bearer <key>' or 'x-api-key: <key>'"))
        digest = _digest(key)
        if digest not in self._buckets:
            return _refusing(handler, Unauthenticated("the API key is not valid"))
        bucket = self._buckets[digest]
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                return _refusing(handler, Overloaded(
                    f"rate limit of {self.rate_per_s:g} calls/s for this API key exceeded", retry_after_s=wait))
        return handler
