"""music-generator: notes composed per second through gRPC (ComposeStream), one stream and 8 concurrent.

One run, on this machine, with the served model: each client composes 8-bar pieces back to back (a different
seed each time, the four styles in turn) for a fixed window; notes/s counts the notes streamed back. The
ratio 8-vs-1 shows what the shared engine's continuous batching buys (every stream shares each decoding
step). Time to the first note is reported too.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time

import grpc

from maas.music.v1 import generator_pb2 as pb
from maas.music.v1 import generator_pb2_grpc
from maas_bench.common import service

STYLES = ("chorale", "folk", "fiddle", "renaissance")
BARS = 8
CONCURRENT = 8
WINDOW_S = 20.0


async def compose_once(stub, style: str, seed: int) -> tuple[int, float]:  # noqa: ANN001
    """(notes, seconds to the first note) of one streamed piece."""
    started = time.perf_counter()
    first = float("nan")
    notes = 0
    async for event in stub.ComposeStream(pb.ComposeStreamRequest(style=style, bars=BARS, seed=seed)):
        if event.WhichOneof("event") == "notes":
            if notes == 0:
                first = time.perf_counter() - started
            notes += len(event.notes.notes)
    return notes, first


async def load(address: str, clients: int, seconds: float) -> dict[str, float]:
    seeds = itertools.count()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = generator_pb2_grpc.MusicGeneratorStub(ch)
        await compose_once(stub, "folk", 0)  # warm
        stop = time.perf_counter() + seconds
        notes, firsts, pieces = 0, [], 0

        async def client(i: int) -> None:
            nonlocal notes, pieces
            while time.perf_counter() < stop:
                seed = next(seeds)
                n, first = await compose_once(stub, STYLES[seed % len(STYLES)], seed)
                notes, pieces = notes + n, pieces + 1
                firsts.append(first)

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return {"notes_per_s": notes / elapsed, "pieces": pieces,
            "first_note_p50_ms": statistics.median(firsts) * 1000 if firsts else float("nan")}


def run() -> list[str]:
    lines = [f"music-generator: {BARS}-bar pieces, styles in turn, {WINDOW_S:.0f}s per measurement, "
             f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"]
    with service("music_generator", "MUSICGEN_") as address:
        one = asyncio.run(load(address, 1, WINDOW_S))
        many = asyncio.run(load(address, CONCURRENT, WINDOW_S))
    lines.append(f"  1 stream:   {one['notes_per_s']:7.1f} notes/s  ({one['pieces']} pieces, first note p50 "
                 f"{one['first_note_p50_ms']:.0f} ms)")
    lines.append(f"  {CONCURRENT} streams:  {many['notes_per_s']:7.1f} notes/s  ({many['pieces']} pieces, first note "
                 f"p50 {many['first_note_p50_ms']:.0f} ms)")
    lines.append(f"  {CONCURRENT} vs 1: {many['notes_per_s'] / one['notes_per_s']:.2f}x aggregate notes/s "
                 "(continuous batching on the shared engine)")
    return lines
