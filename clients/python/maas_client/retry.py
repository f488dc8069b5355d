"""When to try a call again: UNAVAILABLE (a server starting, draining or restarting) and RESOURCE_EXHAUSTED
(a full queue, a rate limit), after the server's RetryInfo delay when it gave one, else exponential backoff with
jitter; never past the call's overall timeout."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import grpc

from maas_client.errors import MaasError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # 1: no retries
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = field(
        default_factory=lambda: frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}))

    def delay(self, error: MaasError, attempt: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when the error is final."""
        if error.code not in self.codes or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            return error.retry_after  # the server knows best when it will have room
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(max_attempts=1)
