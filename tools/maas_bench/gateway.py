"""What the gateway costs: the same calls through the gateway and straight to the service, in one run.

- unary latency (one client, back to back): p50 / p99, and what the gateway adds at p50 (goal <= 0.5 ms);
- unary throughput (CLIENTS concurrent clients): calls/s through the gateway / direct (goal >= 80 %);
- per-message overhead of a stream: a server stream of STREAM_MESSAGES small messages, time per message.

The cheap calls are ``maas.testing.v1.Echo`` (a server on the shared runtime that does no work, so the proxy's
own cost is all there is to see); EmbedText with one short text (a real model call) when the nlp-analysis
models are built. Every process (bench client, gateway, upstream) shares this machine's cores: the gateway's CPU
comes out of the service's, which is why throughput on a cheap call is the hard number. CPU used by other
processes during the run is measured and printed, so numbers taken on a busy machine say so.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import grpc

from maas_bench.common import ROOT, closed_loop, service

CLIENTS = 16
SECONDS = 5.0
WARMUP_S = 1.0
STREAM_MESSAGES = 5000
STREAM_ROUNDS = 3


# ---- CPU used by processes that are not ours ------------------------------------------------------------------
def _busy_ticks() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle


def _our_ticks() -> int:
    me, total = os.getpid(), 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        pid, ppid = int(entry.name), int(rest[1])
        if pid == me or ppid == me:
            total += int(rest[11]) + int(rest[12])
    return total


def child_pid(module: str) -> int | None:
    """The pid of the process this bench started as ``python -m <module>`` (or the executable that module replaced
    itself with: ``python -m maas_gateway`` execs ``maas-gateway``)."""
    me = os.getpid()
    executable = module.replace("_", "-").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == me and (module.encode() in argv or argv[0].rsplit(b"/", 1)[-1] == executable):
            return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


class OtherCpu:
    """Cores' worth of CPU used by processes other than the bench and the servers it started."""

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self.t0 = time.monotonic()
        self.busy0 = _busy_ticks() if self.available else 0
        self.ours0 = _our_ticks() if self.available else 0

    def cores(self) -> float | None:
        if not self.available:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        elapsed = time.monotonic() - self.t0
        other = (_busy_ticks() - self.busy0) - (_our_ticks() - self.ours0)
        return max(0.0, other / hz / elapsed)


# ---- measurements ----------------------------------------------------------------------------------------------
async def unary(address: str, make_call: Callable[[grpc.aio.Channel], Callable[[int], Awaitable[Any]]],
                clients: int) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as ch:
        fn = make_call(ch)

        async def call(i: int) -> int:
            await fn(i)
            return 1

        return await closed_loop(call, clients, SECONDS, warmup_s=WARMUP_S)


def echo_call(ch: grpc.aio.Channel) -> Callable[[int], Awaitable[Any]]:
    from maas_gateway.testing import protos

    pb, pb_grpc = protos()
    stub, request = pb_grpc.EchoStub(ch), pb.EchoRequest(text="ping")
    return lambda i: stub.Unary(request, timeout=10)


def embed_call(ch: grpc.aio.Channel) -> Callable[[int], Awaitable[Any]]:
    from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc

    stub = nlp_pb2_grpc.NlpAnalysisStub(ch)
    texts = ["calm piano for studying", "a song about the sea", "drums and bass at night", "slow sad violin"]
    return lambda i: stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=[texts[i % len(texts)]]), timeout=30)


async def stream_seconds_per_message(address: str) -> float:
    """Best of STREAM_ROUNDS server streams of STREAM_MESSAGES messages: seconds per message."""
    from maas_gateway.testing import protos

    pb, pb_grpc = protos()
    best = float("inf")
    async with grpc.aio.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)]) as ch:
        stub = pb_grpc.EchoStub(ch)
        async for _ in stub.ServerStream(pb.EchoRequest(text="w", count=200), timeout=60):
            pass
        for _ in range(STREAM_ROUNDS):
            t0 = time.perf_counter()
            n = 0
            async for _ in stub.ServerStream(pb.EchoRequest(text="token", count=STREAM_MESSAGES), timeout=120):
                n += 1
            assert n == STREAM_MESSAGES
            best = min(best, (time.perf_counter() - t0) / n)
    return best


def nlp_models_missing() -> list[str]:
    from nlp_analysis.settings import NlpSettings

    settings = NlpSettings(model_repository=ROOT / "models")
    names = [getattr(settings, f) for f in type(settings).model_fields if f.endswith("_model")]
    return [n for n in names if not (settings.model_repository / n).is_dir()]


def compare(label: str, direct: dict[str, float], via: dict[str, float]) -> list[str]:
    return [f"  {label:34s} direct  p50 {direct['p50_ms']:6.2f} ms  p99 {direct['p99_ms']:6.2f} ms  "
            f"{direct['per_s']:8.0f} calls/s",
            f"  {'':34s} gateway p50 {via['p50_ms']:6.2f} ms  p99 {via['p99_ms']:6.2f} ms  "
            f"{via['per_s']:8.0f} calls/s"]


def run() -> list[str]:
    watch = OtherCpu()
    out = [f"gateway vs direct (Echo: a call that does no work; {CLIENTS} clients for throughput; "
           f"{os.cpu_count()} cores shared by client, gateway and service):"]
    lat: dict[str, tuple[dict, dict]] = {}
    thr: dict[str, tuple[dict, dict]] = {}
    cpu: dict[str, float] = {}
    with service("maas_gateway.testing", "ECHO_") as echo, \
            service("maas_gateway", "GATEWAY_", echo_addr=echo) as gw:
        lat["Echo.Unary"] = (asyncio.run(unary(echo, echo_call, 1)), asyncio.run(unary(gw, echo_call, 1)))
        # CPU seconds per call of each process, from /proc: what contention cannot inflate
        echo_pid, gw_pid = child_pid("maas_gateway.testing"), child_pid("maas_gateway")
        e0 = cpu_seconds(echo_pid)
        direct = asyncio.run(unary(echo, echo_call, CLIENTS))
        e1, g1 = cpu_seconds(echo_pid), cpu_seconds(gw_pid)
        via = asyncio.run(unary(gw, echo_call, CLIENTS))
        e2, g2 = cpu_seconds(echo_pid), cpu_seconds(gw_pid)
        thr["Echo.Unary"] = (direct, via)
        # calls made, warm-up included (the CPU readings span it)
        calls_d, calls_v = (r["per_s"] * (SECONDS + WARMUP_S) for r in (direct, via))
        cpu = {"service": (e1 - e0) / calls_d, "service_via": (e2 - e1) / calls_v, "gateway": (g2 - g1) / calls_v}
        direct_msg = asyncio.run(stream_seconds_per_message(echo))
        via_msg = asyncio.run(stream_seconds_per_message(gw))
    missing = nlp_models_missing()
    if not missing:
        with service("nlp_analysis", "NLP_") as nlp, service("maas_gateway", "GATEWAY_", nlp_analysis_addr=nlp) as gw:
            lat["EmbedText, 1 short text"] = (asyncio.run(unary(nlp, embed_call, 1)),
                                              asyncio.run(unary(gw, embed_call, 1)))
            thr["EmbedText, 1 short text"] = (asyncio.run(unary(nlp, embed_call, CLIENTS)),
                                              asyncio.run(unary(gw, embed_call, CLIENTS)))
    other = watch.cores()

    out.append(" latency, one client:")
    for name, (d, v) in lat.items():
        out += compare(name, d, v)
    out.append(f" throughput, {CLIENTS} clients:")
    for name, (d, v) in thr.items():
        out += compare(name, d, v)
    out.append(f" CPU per Echo.Unary call (from /proc; contention does not inflate it): service {cpu['service'] * 1e6:5.0f} us "
               f"direct, {cpu['service_via'] * 1e6:5.0f} us via the gateway; gateway {cpu['gateway'] * 1e6:5.0f} us")
    out.append(f" stream, {STREAM_MESSAGES} messages (Echo.ServerStream, best of {STREAM_ROUNDS}): "
               f"direct {direct_msg * 1e6:6.1f} us/msg, gateway {via_msg * 1e6:6.1f} us/msg")
    for name, (d, v) in lat.items():
        added = v["p50_ms"] - d["p50_ms"]
        out.append(f"  RATIO {name}: added at p50 {added:+.3f} ms  (goal <= 0.5 ms)  "
                   f"{'met' if added <= 0.5 else 'NOT met'}")
    for name, (d, v) in thr.items():
        ratio = v["per_s"] / d["per_s"]
        out.append(f"  RATIO {name}: gateway / direct throughput {ratio:6.1%}  (goal >= 80 %)  "
                   f"{'met' if ratio >= 0.8 else 'NOT met'}")
    out.append(f"  RATIO stream: added per message {(via_msg - direct_msg) * 1e6:+.1f} us "
               f"({via_msg / direct_msg:.2f}x direct)")
    if missing:
        out.append(f"  (EmbedText rows skipped: models not built: {', '.join(missing)}; `make models`)")
    if other is None:
        out.append("  (CPU used by other processes: not measurable here)")
    else:
        busy = other >= 0.25
        out.append(f"  CPU used by other processes during the run: {other:.2f} of {os.cpu_count()} cores"
                   + ("  -- MEASURED UNDER CONTENTION: numbers are pessimistic" if busy else ""))
    return out
