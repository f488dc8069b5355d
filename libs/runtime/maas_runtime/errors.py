"""One error type carrying a gRPC status, and the one place it becomes a gRPC answer.

Domain code (pipelines, batchers, model wrappers) raises these without importing grpc servicers; the
runtime's interceptor turns them into a status with ``google.rpc.Status`` details (BadRequest field
violations for invalid input, RetryInfo when overloaded). Anything else is INTERNAL with a generic message.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


QUOTE_CHARS = 40  # of a caller's value quoted in an error message
MAX_DESCRIPTION_CHARS = 400  # one field violation's description
MAX_MESSAGE_CHARS = 1000  # a status message: it travels in a header, and every hop limits header size


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """A caller's value as an error message may show it: escaped (repr), at most ``limit`` characters of it, and
    its length when cut, e.g. ``'xxxxxxxx…' (20000 characters)``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class ServiceError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        message = _bounded(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        return []

    def to_status(self) -> grpc.Status:
        proto = status_pb2.Status(code=self.code.value[0], message=self.message, details=self.details())
        return rpc_status.to_status(proto)


class InvalidArgument(ServiceError):
    """Bad input. Names the offending field(s), e.g. ``texts[3]``."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str, *more: FieldViolation) -> None:
        self.violations = [FieldViolation(_bounded(v.field, 200), _bounded(v.description, MAX_DESCRIPTION_CHARS))
                           for v in (FieldViolation(field, description), *more)]
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in self.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        return [detail]


class Unauthenticated(ServiceError):
    """No credentials, or credentials that are not valid (e.g. a missing or unknown API key)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class Unavailable(ServiceError):
    """Not ready (models loading, shutting down) or a dependency is down: the caller may retry elsewhere."""

    code = grpc.StatusCode.UNAVAILABLE


class Overloaded(ServiceError):
    """A bounded queue is full. Carries a retry hint (RetryInfo detail and the message)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float = 0.1) -> None:
        super().__init__(f"{message}; retry after {retry_after_s:.2f}s")
        self.retry_after_s = retry_after_s

    def details(self) -> list[any_pb2.Any]:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(max(1, int(self.retry_after_s * 1000)))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return [detail]


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unimplemented(ServiceError):
    code = grpc.StatusCode.UNIMPLEMENTED


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
