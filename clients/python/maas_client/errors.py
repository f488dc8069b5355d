"""The one error the SDK raises for a failed call, with what the server put in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

REQUEST_ID = "x-request-id"
_DETAILS = "grpc-status-details-bin"


@dataclass
class FieldViolation:
    field: str
    description: str


@dataclass
class MaasError(Exception):
    """A call that failed: its gRPC ``code``, the server's ``message``, the ``request_id`` to quote, and the
    google.rpc details decoded (``field_violations`` for INVALID_ARGUMENT, ``retry_after`` seconds when the
    server said when to come back)."""

    code: grpc.StatusCode
    message: str
    request_id: str | None = None
    field_violations: list[FieldViolation] = field(default_factory=list)
    retry_after: float | None = None
    attempts: int = 1

    def __str__(self) -> str:
        where = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.code.name}: {self.message}{where}"

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, request_id: str | None = None, attempts: int = 1) -> "MaasError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else str(error)) or ""
        trailing = _metadata(error)
        out = cls(code=code or grpc.StatusCode.UNKNOWN, message=message,
                  request_id=_get(trailing, REQUEST_ID) or request_id, attempts=attempts)
        raw = _get(trailing, _DETAILS)
        if isinstance(raw, bytes):
            try:
                status = status_pb2.Status.FromString(raw)
            except Exception:  # noqa: BLE001 - a malformed detail is not worth failing over
                return out
            for detail in status.details:
                bad, retry = error_details_pb2.BadRequest(), error_details_pb2.RetryInfo()
                if detail.Unpack(bad):
                    out.field_violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
                elif detail.Unpack(retry):
                    out.retry_after = retry.retry_delay.ToTimedelta().total_seconds()
        return out


def _metadata(error: Any) -> tuple:
    try:
        return tuple(error.trailing_metadata() or ())
    except Exception:  # noqa: BLE001 - an error without metadata
        return ()


def _get(metadata: tuple, key: str) -> Any:
    for k, v in metadata:
        if k == key:
            return v
    return None
