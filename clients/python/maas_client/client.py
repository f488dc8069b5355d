"""``Client`` (blocking) and ``AsyncClient`` (asyncio): one channel to the gateway, one attribute per service.

    from maas_client import Client
    with Client() as maas:                                   # 127.0.0.1:50051, or $MAAS_TARGET
        maas.nlp.analyze_sentiment(["I love this record!"]).results[0].positive

    async with AsyncClient(api_key="...") as maas:
        await maas.nlp.embed(["calm piano"])

Every call carries an ``x-request-id`` (yours, or one made here, the same across retries) and a timeout that
covers all of its attempts; UNAVAILABLE and RESOURCE_EXHAUSTED are retried as ``RetryPolicy`` says (after the
server's RetryInfo delay when there is one). A failure raises ``MaasError`` with the code, the server's message,
the request id and the google.rpc details.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas_client.errors import REQUEST_ID, MaasError
from maas_client.retry import RetryPolicy
from maas_client.services import SERVICES

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 30.0
TARGET_ENV, API_KEY_ENV = "MAAS_TARGET", "MAAS_API_KEY"


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


class _Settings:
    """What every call needs: timeout, retry policy, API key."""

    def __init__(self, timeout: float, retry: RetryPolicy, api_key: str | None) -> None:
        self.timeout = timeout
        self.retry = retry
        self.api_key = api_key

    def metadata(self, request_id: str, extra: Any) -> tuple[tuple[str, str], ...]:
        md = [(REQUEST_ID, request_id)]
        if self.api_key:
            md.append(("authorization", f"Bearer {self.api_key}"))
        md.extend(tuple(extra or ()))
        return tuple(md)


def _channel_args(target: str | None, tls: bool, ca_file: str | Path | None, cert_file: str | Path | None,
                  key_file: str | Path | None, server_name: str | None, max_message_bytes: int
                  ) -> tuple[str, grpc.ChannelCredentials | None, list[tuple[str, Any]]]:
    target = target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", max_message_bytes),
                                      ("grpc.max_send_message_length", max_message_bytes),
                                      ("grpc.primary_user_agent", "maas-client-python")]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    credentials = None
    if tls or ca_file or cert_file:
        read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
        credentials = grpc.ssl_channel_credentials(read(ca_file), read(key_file), read(cert_file))
    return target, credentials, options


# ---- blocking ------------------------------------------------------------------------------------------------
class _SyncInvoker:
    def __init__(self, settings: _Settings) -> None:
        self.s = settings

    def unary(self, method: Callable[..., Any], request: Any, *, timeout: float | None = None,
              request_id: str | None = None, metadata: Any = None, retry: RetryPolicy | None = None) -> Any:
        request_id = request_id or new_request_id()
        policy = retry or self.s.retry
        deadline = time.monotonic() + (timeout if timeout is not None else self.s.timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(request, timeout=max(0.0, deadline - time.monotonic()),
                              metadata=self.s.metadata(request_id, metadata))
            except grpc.RpcError as e:
                error = MaasError.from_rpc_error(e, request_id, attempt)
            wait = policy.delay(error, attempt)
            if wait is None or time.monotonic() + wait >= deadline:
                raise error
            time.sleep(wait)

    def stream(self, method: Callable[..., Any], request: Any, *, timeout: float | None = None,
               request_id: str | None = None, metadata: Any = None, retry: RetryPolicy | None = None
               ) -> Iterator[Any]:
        """Responses as they come; retried only before the first one arrived (later, it would repeat them)."""
        request_id = request_id or new_request_id()
        policy = retry or self.s.retry
        deadline = time.monotonic() + (timeout if timeout is not None else self.s.timeout)
        attempt = 0
        while True:
            attempt += 1
            received = False
            call = method(request, timeout=max(0.0, deadline - time.monotonic()),
                          metadata=self.s.metadata(request_id, metadata))
            try:
                for response in call:
                    received = True
                    yield response
                return
            except grpc.RpcError as e:
                error = MaasError.from_rpc_error(e, request_id, attempt)
            finally:
                call.cancel()  # no-op once finished; stops the server when the caller stops reading
            wait = None if received else policy.delay(error, attempt)
            if wait is None or time.monotonic() + wait >= deadline:
                raise error
            time.sleep(wait)


class Client:
    """Blocking client. ``target``: host:port of the gateway (default $MAAS_TARGET, else 127.0.0.1:50051)."""

    def __init__(self, target: str | None = None, *, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, retry: RetryPolicy = RetryPolicy(), tls: bool = False,
                 ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                 key_file: str | Path | None = None, server_name: str | None = None,
                 max_message_bytes: int = 64 * 1024 * 1024) -> None:
        self.target, credentials, options = _channel_args(target, tls, ca_file, cert_file, key_file, server_name,
                                                          max_message_bytes)
        self.channel = grpc.secure_channel(self.target, credentials, options=options) if credentials \
            else grpc.insecure_channel(self.target, options=options)
        self._invoke = _SyncInvoker(_Settings(timeout, retry, api_key or os.environ.get(API_KEY_ENV)))
        for attribute, service in SERVICES.items():
            setattr(self, attribute, service(self.channel, self._invoke))

    def health(self, service: str = "", timeout: float = 5.0) -> str:
        """grpc.health.v1 status of the gateway ("") or of one service: SERVING, NOT_SERVING, ..."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = self._invoke.unary(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- asyncio -------------------------------------------------------------------------------------------------
class _AsyncInvoker:
    def __init__(self, settings: _Settings) -> None:
        self.s = settings

    async def unary(self, method: Callable[..., Any], request: Any, *, timeout: float | None = None,
                    request_id: str | None = None, metadata: Any = None, retry: RetryPolicy | None = None) -> Any:
        request_id = request_id or new_request_id()
        policy = retry or self.s.retry
        deadline = time.monotonic() + (timeout if timeout is not None else self.s.timeout)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(request, timeout=max(0.0, deadline - time.monotonic()),
                                    metadata=self.s.metadata(request_id, metadata))
            except grpc.aio.AioRpcError as e:
                error = MaasError.from_rpc_error(e, request_id, attempt)
            wait = policy.delay(error, attempt)
            if wait is None or time.monotonic() + wait >= deadline:
                raise error
            await asyncio.sleep(wait)

    async def stream(self, method: Callable[..., Any], request: Any, *, timeout: float | None = None,
                     request_id: str | None = None, metadata: Any = None, retry: RetryPolicy | None = None
                     ) -> AsyncIterator[Any]:
        request_id = request_id or new_request_id()
        policy = retry or self.s.retry
        deadline = time.monotonic() + (timeout if timeout is not None else self.s.timeout)
        attempt = 0
        while True:
            attempt += 1
            received = False
            call = method(request, timeout=max(0.0, deadline - time.monotonic()),
                          metadata=self.s.metadata(request_id, metadata))
            try:
                async for response in call:
                    received = True
                    yield response
                return
            except grpc.aio.AioRpcError as e:
                error = MaasError.from_rpc_error(e, request_id, attempt)
            finally:
                call.cancel()  # no-op once finished; stops the server when the caller stops reading
            wait = None if received else policy.delay(error, attempt)
            if wait is None or time.monotonic() + wait >= deadline:
                raise error
            await asyncio.sleep(wait)


class AsyncClient:
    """asyncio client; the same services, whose methods are coroutines (async iterators for streams)."""

    def __init__(self, target: str | None = None, *, api_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S, retry: RetryPolicy = RetryPolicy(), tls: bool = False,
                 ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                 key_file: str | Path | None = None, server_name: str | None = None,
                 max_message_bytes: int = 64 * 1024 * 1024) -> None:
        self.target, credentials, options = _channel_args(target, tls, ca_file, cert_file, key_file, server_name,
                                                          max_message_bytes)
        self.channel = grpc.aio.secure_channel(self.target, credentials, options=options) if credentials \
            else grpc.aio.insecure_channel(self.target, options=options)
        self._invoke = _AsyncInvoker(_Settings(timeout, retry, api_key or os.environ.get(API_KEY_ENV)))
        for attribute, service in SERVICES.items():
            setattr(self, attribute, service(self.channel, self._invoke))

    async def health(self, service: str = "", timeout: float = 5.0) -> str:
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = await self._invoke.unary(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
