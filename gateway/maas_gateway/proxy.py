"""Forwarding, in the four RPC shapes, of messages the gateway never decodes (bytes in, bytes out).

What travels with a call:
- to the upstream: the caller's metadata (``authorization``, ``x-request-id``, anything custom; not the
  transport's own ``grpc-*`` headers), the request id the runtime's interceptor settled on, and the caller's
  deadline (what is left of it);
- back to the caller: the upstream's initial metadata, its messages as they come, its status code, details and
  trailing metadata (``grpc-status-details-bin`` included) unchanged;
- a cancelled caller cancels the upstream call (the aio server cancels the handler; the handler cancels its call).

An upstream that cannot be reached (no replica connected: a status the upstream never sent, with no trailing
metadata) is answered UNAVAILABLE naming the upstream, without its internal address; the details are logged.
"""

from __future__ import annotations

from functools import partial
from typing import Any, AsyncIterator

import grpc

from maas_gateway.upstream import Shape, Upstream
from maas_runtime.interceptors import REQUEST_ID
from maas_runtime.logs import request_id

# Headers of the transport, not of the caller: grpc sets its own on the upstream call.
_HOP_BY_HOP = frozenset({"user-agent", "te", "content-type", "host", "connection"})


def outgoing_metadata(context: grpc.aio.ServicerContext) -> tuple[tuple[str, Any], ...]:
    out: list[tuple[str, Any]] = [(REQUEST_ID, request_id.get())]
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID or key in _HOP_BY_HOP or key.startswith(("grpc-", ":")):
            continue
        out.append((key, value))
    return tuple(out)


def _with_request_id(metadata: Any) -> tuple[tuple[str, Any], ...]:
    md = tuple(metadata or ())
    if not any(k == REQUEST_ID for k, _ in md):
        md += ((REQUEST_ID, request_id.get()),)
    return md


async def relay_error(context: grpc.aio.ServicerContext, upstream: Upstream, error: grpc.aio.AioRpcError) -> None:
    """Answer the caller with the upstream's status (raises grpc.aio.AbortError, as context.abort does)."""
    code, details, trailing = error.code(), error.details() or "", tuple(error.trailing_metadata() or ())
    if code == grpc.StatusCode.UNAVAILABLE and not trailing:
        upstream.warn_unreachable(details)
        details = f"{upstream.name} is unreachable; retry later"
    await context.abort(code, details, _with_request_id(trailing))


async def _relay_initial(context: grpc.aio.ServicerContext, call: Any) -> None:
    initial = await call.initial_metadata()
    if initial:
        await context.send_initial_metadata(tuple(initial))


async def _relay_trailing(context: grpc.aio.ServicerContext, call: Any) -> None:
    context.set_trailing_metadata(_with_request_id(await call.trailing_metadata()))


def _timeout(context: grpc.aio.ServicerContext) -> float | None:
    return context.time_remaining()


async def forward_unary(upstream: Upstream, method: str, request: Any, context: grpc.aio.ServicerContext,
                        shape: Shape = Shape.UNARY_UNARY) -> Any:
    """One response (unary or client-streaming ``request``)."""
    call = upstream.multicallable(method, shape)(request, timeout=_timeout(context),
                                                 metadata=outgoing_metadata(context))
    try:
        response = await call  # a cancelled handler cancels the call (grpc.aio does it in __await__)
    except grpc.aio.AioRpcError as e:
        await relay_error(context, upstream, e)
        raise  # not reached: abort raised
    await _relay_initial(context, call)
    await _relay_trailing(context, call)
    return response


async def forward_stream(upstream: Upstream, method: str, request: Any, context: grpc.aio.ServicerContext,
                         shape: Shape) -> AsyncIterator[Any]:
    """Responses as they come (server- or bidirectional streaming ``request``)."""
    call = upstream.multicallable(method, shape)(request, timeout=_timeout(context),
                                                 metadata=outgoing_metadata(context))
    try:
        await _relay_initial(context, call)
        async for response in call:
            yield response
        await _relay_trailing(context, call)
    except grpc.aio.AioRpcError as e:
        await relay_error(context, upstream, e)
    finally:
        call.cancel()  # no-op once finished; stops the upstream when the caller went away


_HANDLERS = {
    Shape.UNARY_UNARY: grpc.unary_unary_rpc_method_handler,
    Shape.UNARY_STREAM: grpc.unary_stream_rpc_method_handler,
    Shape.STREAM_UNARY: grpc.stream_unary_rpc_method_handler,
    Shape.STREAM_STREAM: grpc.stream_stream_rpc_method_handler,
}


def method_handler(upstream: Upstream, method: str, shape: Shape) -> grpc.RpcMethodHandler:
    """A handler without (de)serializers that forwards ``method`` of ``shape`` to ``upstream``."""
    forward = forward_stream if shape.value[1] else forward_unary
    return _HANDLERS[shape](partial(forward, upstream, method, shape=shape))
