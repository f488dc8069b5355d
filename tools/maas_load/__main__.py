"""``make load`` / ``python -m maas_load [--clients 200] [--seconds 60] [--target HOST:PORT --run-dir DIR]``

200 concurrent clients through the gateway for 60 s on a realistic mix: streamed generation, sentiment,
recommendations from a text, a 2-bar composition (streamed), interaction writes. By default it starts a suite of
its own (the real services and models, on free loopback ports) and stops it after; ``--target`` and ``--run-dir``
load one that runs already (``make up``: 127.0.0.1:50051 and .run).

It prints, per operation, the calls, their status codes, the latency p50 / p99 and the time to the first event
(first streamed message, or the answer), each server's resident memory before and after, and checks:
no INTERNAL / UNKNOWN / UNAVAILABLE; overload answered only as RESOURCE_EXHAUSTED with a retry hint, fast
(p99 under 0.5 s); first event p99 of admitted calls within 2 s; memory growth under 10 %; every acknowledged
interaction stored. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import grpc
import numpy as np
from google.rpc import error_details_pb2, status_pb2

from maas.music.v1 import generator_pb2 as music_pb2
from maas.music.v1 import generator_pb2_grpc as music_grpc
from maas.music.v1 import recommender_pb2 as rec_pb2
from maas.music.v1 import recommender_pb2_grpc as rec_grpc
from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas.textgen.v1 import textgen_pb2 as tg_pb2
from maas.textgen.v1 import textgen_pb2_grpc as tg_grpc

PROMPTS = ["Write a short verse about the sea.", "Name a chord that sounds sad.", "Describe a violin in one line.",
           "Give a title for a slow song.", "What is a fugue?"]
TEXTS = ["I love this record!", "What a dull, lifeless album.", "The chorus is fine, the verses drag on.",
         "An absolute joy from start to finish.", "I want my money back."]
QUERIES = ["a calm piece for studying", "lively irish jig", "a sad slow lament", "festive organ music",
           "energetic fiddle tune for dancing"]
TRACKS = ["m21:bach/bwv66.6.mxl", "m21:bach/bwv10.7.mxl"]
MIX = [("generate_stream", 2), ("sentiment", 3), ("recommend_text", 2), ("compose_2_bars", 1),
       ("record_interactions", 2)]
FAULTS = {"INTERNAL", "UNKNOWN", "UNAVAILABLE"}


class Stats:
    def __init__(self) -> None:
        self.codes: dict[str, Counter] = defaultdict(Counter)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.first: dict[str, list[float]] = defaultdict(list)
        self.refused: dict[str, list[float]] = defaultdict(list)  # seconds to a RESOURCE_EXHAUSTED
        self.hintless: Counter = Counter()
        self.acknowledged: list[str] = []


def retry_hint(err: grpc.aio.AioRpcError) -> bool:
    md = dict(err.trailing_metadata() or ())
    raw = md.get("grpc-status-details-bin")
    if not raw:
        return False
    status = status_pb2.Status.FromString(raw)
    return any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)


async def one(op: str, stubs: dict, rng: random.Random, stats: Stats) -> None:
    started = time.monotonic()
    first = None
    try:
        if op == "generate_stream":
            request = tg_pb2.GenerateStreamRequest(messages=[tg_pb2.ChatMessage(role="user", content=rng.choice(PROMPTS))],
                                                   max_new_tokens=32, temperature=0.7)
            async for _ in stubs["textgen"].GenerateStream(request, timeout=60):
                first = first or time.monotonic()
        elif op == "sentiment":
            await stubs["nlp"].AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest(texts=[rng.choice(TEXTS)]), timeout=30)
        elif op == "recommend_text":
            await stubs["rec"].Recommend(rec_pb2.RecommendRequest(query_text=rng.choice(QUERIES), k=10), timeout=30)
        elif op == "compose_2_bars":
            request = music_pb2.ComposeStreamRequest(style=rng.choice(["folk", "chorale", "fiddle"]), bars=2,
                                                     seed=rng.randrange(1 << 30))
            async for _ in stubs["music"].ComposeStream(request, timeout=60):
                first = first or time.monotonic()
        elif op == "record_interactions":
            events = [rec_pb2.InteractionEvent(event_id=uuid.uuid4().hex, user_id=f"load-{rng.randrange(50)}",
                                          track_id=rng.choice(TRACKS), type=rec_pb2.INTERACTION_TYPE_PLAY)
                      for _ in range(3)]
            await stubs["rec"].RecordInteractions(rec_pb2.RecordInteractionsRequest(events=events), timeout=30)
            stats.acknowledged += [e.event_id for e in events]
        code = "OK"
    except grpc.aio.AioRpcError as err:
        code = err.code().name
        if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            stats.refused[op].append(time.monotonic() - started)
            if not retry_hint(err):
                stats.hintless[op] += 1
    done = time.monotonic()
    stats.codes[op][code] += 1
    if code == "OK":
        stats.latency[op].append(done - started)
        stats.first[op].append((first or done) - started)


async def drive(target: str, clients: int, seconds: float, stats: Stats) -> None:
    channels = [grpc.aio.insecure_channel(target) for _ in range(max(1, clients // 50))]  # ~50 streams a connection
    ops, weights = zip(*MIX)
    stop = time.monotonic() + seconds

    async def client(i: int) -> None:
        ch = channels[i % len(channels)]
        stubs = {"textgen": tg_grpc.TextGeneratorStub(ch), "nlp": nlp_pb2_grpc.NlpAnalysisStub(ch),
                 "rec": rec_grpc.MusicRecommenderStub(ch), "music": music_grpc.MusicGeneratorStub(ch)}
        rng = random.Random(i)
        while time.monotonic() < stop:
            await one(rng.choices(ops, weights)[0], stubs, rng, stats)

    await asyncio.gather(*(client(i) for i in range(clients)))
    for ch in channels:
        await ch.close()


def rss_mib(run_dir: Path) -> dict[str, float]:
    out = {}
    for pid_file in sorted(run_dir.glob("*.pid")):
        try:
            status = Path(f"/proc/{int(pid_file.read_text().strip())}/status").read_text()
        except (OSError, ValueError):
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        out[pid_file.stem] = kb / 1024
    return out


def stored(run_dir: Path, ids: list[str]) -> int:
    db = sqlite3.connect(str(run_dir / "music-recommender" / "store.sqlite3"))
    have = {r[0] for r in db.execute("SELECT event_id FROM interactions WHERE user_id LIKE 'load-%'")}
    db.close()
    return sum(1 for i in ids if i in have)


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q) * 1e3:7.0f}" if values else "      -"


def report(stats: Stats, seconds: float, before: dict, after: dict, acknowledged_stored: int) -> list[str]:
    lines = [f"{'operation':20s} {'calls':>6s} {'/s':>6s}  {'p50 ms':>7s} {'p99 ms':>7s}  {'first p50':>9s} "
             f"{'first p99':>9s}  codes"]
    failures = []
    for op, _ in MIX:
        codes = stats.codes[op]
        calls = sum(codes.values())
        lines.append(f"{op:20s} {calls:6d} {calls / seconds:6.1f}  {pct(stats.latency[op], 50)} "
                     f"{pct(stats.latency[op], 99)}  {pct(stats.first[op], 50)}   {pct(stats.first[op], 99)}  "
                     + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
        if FAULTS & set(codes):
            failures.append(f"{op}: {', '.join(c for c in codes if c in FAULTS)}")
        if set(codes) - FAULTS - {"OK", "RESOURCE_EXHAUSTED"}:
            failures.append(f"{op}: unexpected codes {set(codes) - {'OK', 'RESOURCE_EXHAUSTED'}}")
        if stats.hintless[op]:
            failures.append(f"{op}: {stats.hintless[op]} RESOURCE_EXHAUSTED without a retry hint")
        if stats.refused[op] and np.percentile(stats.refused[op], 99) > 0.5:
            failures.append(f"{op}: refusals took {np.percentile(stats.refused[op], 99):.2f}s at p99 (not at once)")
        if stats.first[op] and np.percentile(stats.first[op], 99) > 2.0:
            failures.append(f"{op}: first event p99 {np.percentile(stats.first[op], 99):.2f}s (goal <= 2 s)")
    lines.append("resident memory (MiB) before -> after:")
    for name in before:
        growth = after.get(name, 0) / before[name] - 1
        lines.append(f"  {name:20s} {before[name]:7.0f} -> {after.get(name, 0):7.0f}  ({growth:+.1%})")
        if growth > 0.10:
            failures.append(f"{name}: memory grew {growth:+.1%} (goal < 10 %)")
    lines.append(f"interactions acknowledged {len(stats.acknowledged)}, stored {acknowledged_stored}")
    if acknowledged_stored != len(stats.acknowledged):
        failures.append("acknowledged interactions were lost")
    lines += [f"FAIL {f}" for f in failures] or ["PASS"]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(prog="maas_load", description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds of the same load before memory is read")
    ap.add_argument("--target", help="a running suite's gateway (with --run-dir); default: start one")
    ap.add_argument("--run-dir", type=Path, default=Path(".run"))
    args = ap.parse_args()
    tmp = None
    if args.target is None:
        from maas_cluster.config import load
        from maas_cluster.testing import isolated

        tmp = Path(tempfile.mkdtemp(prefix="maas-load-"))
        config, env = isolated(tmp)
        gateway = next(s for s in load(config).enabled() if s.kind == "gateway")
        args.target, args.run_dir = f"127.0.0.1:{env[gateway.var('port')]}", tmp / "run"
        cluster = [sys.executable, "-m", "maas_cluster", "--config", str(config)]
        subprocess.run([*cluster, "up"], env=env, check=True, timeout=900, stdout=subprocess.DEVNULL)
    try:
        warm = Stats()
        asyncio.run(drive(args.target, args.clients, args.warmup, warm))  # the first load grows caches: not counted
        before = rss_mib(args.run_dir)
        stats = Stats()
        stats.acknowledged = warm.acknowledged
        started = time.monotonic()
        windows = max(1, int(args.seconds // 60))  # memory is read after each minute: does it level off?
        for w in range(windows):
            asyncio.run(drive(args.target, args.clients, args.seconds / windows, stats))
            if windows > 1:
                print(f"  after minute {w + 1}: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in rss_mib(args.run_dir).items()),
                      flush=True)
        elapsed = time.monotonic() - started
        after = rss_mib(args.run_dir)
        lines = report(stats, elapsed, before, after, stored(args.run_dir, stats.acknowledged))
    finally:
        if tmp is not None:
            subprocess.run([*cluster, "down"], env=env, timeout=120, stdout=subprocess.DEVNULL)
    print(f"{args.clients} clients through {args.target} for {elapsed:.0f} s (after {args.warmup:.0f} s of warm-up):")
    print("\n".join(lines))
    sys.exit(0 if lines[-1] == "PASS" else 1)


if __name__ == "__main__":
    main()
