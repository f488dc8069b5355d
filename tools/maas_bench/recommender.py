"""music-recommender: model quality (from the build's manifest, one evaluation run) and serving at scale.

* Quality: MovieLens-100k Recall@10 / NDCG@10 of the hybrid against the popularity baseline and implicit's ALS
  with default settings (the same split, the same run: `make models`), and precision@5 of the labelled query set
  on the music catalog.
* Scale: a server whose snapshot is a synthetic catalog of 1,000,000 items (clustered content vectors, ALS-like
  factors, a Zipf popularity; faiss IVF candidates, ONNX re-scoring), behind a real nlp-analysis. Recommend
  latency by kind of request (one client: latency; 8 clients: throughput; a new query text each call pays the
  EmbedText call, a repeated one hits the server's query cache), and RecordInteractions throughput
  into the durable SQLite store (every call an fsynced commit).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time

import grpc

from maas.music.v1 import recommender_pb2 as pb
from maas.music.v1 import recommender_pb2_grpc
from maas_bench.common import ROOT, closed_loop, service

ITEMS = 1_000_000
SECONDS = 6.0


def quality() -> list[str]:
    m = json.loads((ROOT / "models" / "music-recommender" / "1" / "manifest.json").read_text())
    ev = m["evaluation"]
    out = [f"music-recommender model (build {m['recipe_key']}, {m['build_seconds']}s to build, budget "
           f"{m['budget_seconds']}s):"]
    for protocol, rows in ev["movielens_100k"].items():
        if not isinstance(rows, dict) or "hybrid" not in rows:
            continue
        out.append(f"  MovieLens-100k, {protocol} ({rows['users']} test users):")
        for name in ("popularity", "implicit_als_default", "als_tuned_alone", "hybrid"):
            r = rows[name]
            out.append(f"    {name:22s} Recall@10 {r['recall@10']:.4f}   NDCG@10 {r['ndcg@10']:.4f}")
        h, p, a = rows["hybrid"], rows["popularity"], rows["implicit_als_default"]
        out.append(f"    RATIO hybrid / popularity:   Recall@10 {h['recall@10'] / p['recall@10']:.2f}x   "
                   f"NDCG@10 {h['ndcg@10'] / p['ndcg@10']:.2f}x  (goal > 1)")
        out.append(f"    RATIO hybrid / default ALS:  Recall@10 {h['recall@10'] / a['recall@10']:.2f}x   "
                   f"NDCG@10 {h['ndcg@10'] / a['ndcg@10']:.2f}x  (goal > 1)")
    out.append(f"  music catalog ({m['catalog']['tracks']} pieces), labelled query set precision@5: "
               f"{ev['query_precision@5']:.3f}")
    return out


async def _prepare(address: str, users: int, per_user: int) -> None:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
        rng = random.Random(0)
        events = [pb.InteractionEvent(event_id=f"prep-{u}-{j}", user_id=f"listener-{u}",
                                      track_id=f"syn:{rng.randrange(10_000)}", type=pb.INTERACTION_TYPE_PLAY)
                  for u in range(users) for j in range(per_user)]
        for i in range(0, len(events), 1000):
            await stub.RecordInteractions(pb.RecordInteractionsRequest(events=events[i:i + 1000]))


async def _recommend(address: str, kind: str, clients: int) -> dict[str, float]:
    queries = ["calm piano for studying", "a lively irish jig", "sacred choir music", "a slow sad waltz",
               "string quartet", "music for a rainy evening", "a fast reel for dancing", "baroque chorale"]
    async with grpc.aio.insecure_channel(address) as ch:
        stub = recommender_pb2_grpc.MusicRecommenderStub(ch)

        def request(i: int) -> pb.RecommendRequest:
            if kind == "user_id (20 plays)":
                return pb.RecommendRequest(user_id=f"listener-{i % 200}", k=10)
            if kind == "query_text (new: EmbedText)":
                return pb.RecommendRequest(query_text=f"{queries[i % len(queries)]} #{i}", k=10)
            if kind == "query_text (repeated)":
                return pb.RecommendRequest(query_text=queries[i % len(queries)], k=10)
            if kind == "seed_track_ids (3)":
                return pb.RecommendRequest(seed_track_ids=[f"syn:{(i * 7919 + j * 104729) % ITEMS}" for j in range(3)],
                                           k=10)
            return pb.RecommendRequest(user_id=f"new-listener-{i}", k=10)

        async def call(i: int) -> int:
            reply = await stub.Recommend(request(i))
            assert len(reply.recommendations) == 10
            return 1

        return await closed_loop(call, clients, SECONDS, warmup_s=1.0)


async def _record(address: str, batch: int, clients: int) -> dict[str, float]:
    run = f"{time.time_ns()}"
    async with grpc.aio.insecure_channel(address) as ch:
        stub = recommender_pb2_grpc.MusicRecommenderStub(ch)

        async def call(i: int) -> int:
            events = [pb.InteractionEvent(event_id=f"{run}-{i}-{j}", user_id=f"u{(i * batch + j) % 5000}",
                                          track_id=f"syn:{(i * 31 + j) % 10_000}", type=pb.INTERACTION_TYPE_PLAY)
                      for j in range(batch)]
            reply = await stub.RecordInteractions(pb.RecordInteractionsRequest(events=events))
            assert reply.recorded == batch
            return batch

        return await closed_loop(call, clients, SECONDS, warmup_s=1.0)


def run() -> list[str]:
    out = quality()
    store = tempfile.mkdtemp(prefix="maas-rec-bench-")
    started = time.monotonic()
    with service("nlp_analysis", "NLP_") as nlp, \
            service("music_recommender", "MUSICREC_", nlp_addr=nlp, synthetic_items=ITEMS,
                    store_url=f"sqlite:///{store}/store.sqlite3", retrain_interval_s=0) as address:
        load_s = time.monotonic() - started
        asyncio.run(_prepare(address, 200, 20))
        out.append(f"music-recommender at {ITEMS:,} synthetic items (faiss IVF candidates + ONNX re-scoring; "
                   f"server ready in {load_s:.0f}s; machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
        for kind in ("user_id (20 plays)", "seed_track_ids (3)", "query_text (new: EmbedText)", "query_text (repeated)",
                     "user_id (cold start)"):
            one = asyncio.run(_recommend(address, kind, 1))
            many = asyncio.run(_recommend(address, kind, 8))
            out.append(f"  Recommend {kind:28s} 1 client: p50 {one['p50_ms']:6.2f} ms  p99 {one['p99_ms']:6.2f} ms"
                       f"   | 8 clients: {many['per_s']:7.1f} req/s  p99 {many['p99_ms']:6.1f} ms")
        for batch, clients in ((100, 8), (1, 8)):
            r = asyncio.run(_record(address, batch, clients))
            out.append(f"  RecordInteractions batch {batch:3d}, {clients} clients: {r['per_s']:9.1f} events/s "
                       f"({r['per_s'] / batch:7.1f} fsynced commits/s)  p99 {r['p99_ms']:6.1f} ms")
    return out
