"""grpc.health.v1 probes: the overall status ("") and one per gRPC service name."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Local probes: never through an HTTP proxy, and reconnect quickly to a server that is still starting
# (the default backoff grows to two minutes, longer than a model load).
CHANNEL_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

SERVING = "SERVING"
NOT_FOUND = "NOT_FOUND"  # the server has no health status registered under that name
_STATUS = health_pb2.HealthCheckResponse.ServingStatus


def channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


def check(stub: health_pb2_grpc.HealthStub, service: str = "", timeout: float = 2.0) -> str:
    """One Check: SERVING / NOT_SERVING / UNKNOWN, NOT_FOUND, or the gRPC code name (UNAVAILABLE, ...)."""
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as e:
        code = e.code() if hasattr(e, "code") else None
        if code == grpc.StatusCode.NOT_FOUND:
            return NOT_FOUND
        return code.name if code is not None else "ERROR"
    name = _STATUS.Name(reply.status)
    return NOT_FOUND if name == "SERVICE_UNKNOWN" else name


def probe(address: str, services: tuple[str, ...] | list[str] = (), timeout: float = 2.0) -> dict[str, str]:
    """Status per name, "" (the whole server) first; an unreachable server answers UNAVAILABLE for all."""
    names = ["", *[s for s in services if s]]
    out: dict[str, str] = {}
    with channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for name in names:
            status = check(stub, name, timeout)
            out[name] = status
            if status in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                for rest in names[len(out):]:
                    out[rest] = status
                break
    return out


def is_serving(statuses: dict[str, str]) -> bool:
    return bool(statuses) and all(s == SERVING for s in statuses.values())


def summary(statuses: dict[str, str]) -> str:
    """SERVING, or the first name that is not, e.g. 'maas.nlp.v1.NlpAnalysis: NOT_FOUND'."""
    if is_serving(statuses):
        return SERVING
    for name, status in statuses.items():
        if status != SERVING:
            return status if not name else f"{name}: {status}"
    return "no answer"
