"""Shared benchmark plumbing: start a service as its own process, drive it with N concurrent clients."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(address: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
    raise TimeoutError(f"{address} not SERVING after {timeout}s")


@contextmanager
def service(module: str, prefix: str, **env: object) -> Iterator[str]:
    """Run ``python -m module`` with PREFIX_* settings on a free port; yields its address."""
    port = free_port()
    full = {**os.environ, f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(port),
            f"{prefix}MODEL_REPOSITORY": str(ROOT / "models"), f"{prefix}LOG_LEVEL": "WARNING",
            **{f"{prefix}{k.upper()}": str(v) for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", module], env=full, stdout=subprocess.DEVNULL)
    try:
        wait_serving(f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


async def closed_loop(call: Callable[[int], Awaitable[int]], clients: int, seconds: float,
                      warmup_s: float = 2.0) -> dict[str, float]:
    """``clients`` concurrent callers, each calling back to back; returns items/s and latency percentiles."""
    latencies: list[float] = []
    items = 0
    measuring = False
    stop_at = time.monotonic() + warmup_s + seconds

    async def client(i: int) -> None:
        nonlocal items
        n = i
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            done = await call(n)
            if measuring:
                latencies.append(time.perf_counter() - t0)
                items += done
            n += clients

    async def window() -> None:
        nonlocal measuring
        await asyncio.sleep(warmup_s)
        measuring = True

    started = asyncio.create_task(window())
    t_measure = time.monotonic() + warmup_s
    await asyncio.gather(*(client(i) for i in range(clients)))
    await started
    elapsed = time.monotonic() - t_measure
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3 if latencies else float("nan")
    return {"per_s": items / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "calls": len(latencies)}
