"""IO binding on the CPU: the generation engine with its KV cache in numpy buffers written in place (the CPU
default) against the cache kept as OrtValues through IO binding (``MAAS io_binding=on``; the CUDA default), the
same float32 SmolLM2 in-process, greedy, 1 stream and 8 streams, in alternating windows (off, on, off, on, ...)
so a slow patch of this noisy machine hits both sides. Decides ``io_binding=auto`` on the CPU."""

from __future__ import annotations

import asyncio
import statistics

from maas_bench.common import ROOT
from maas_bench.engine import Decoder, chat_prompts, streams
from maas_bench.textgen import CONCURRENT, PROMPTS

MODEL = "smollm2-135m-instruct"
ROUNDS = 3
WINDOW_S = 6.0
MAX_NEW_TOKENS = 96


def run() -> list[str]:
    prompts = chat_prompts(ROOT / "models" / MODEL / "1", PROMPTS)
    decoders = {bound: Decoder(ROOT / "models", MODEL, "cpu", io_binding=bound) for bound in (False, True)}
    results: dict[tuple[bool, int], list[float]] = {}

    async def measure() -> None:
        for bound, dec in decoders.items():  # warm-up: every graph and shape once
            eng = dec.engine(CONCURRENT)
            await streams(eng, prompts, CONCURRENT, 8, window_s=0.5, warmup_s=0)
            await eng.close()
        for _ in range(ROUNDS):
            for clients in (1, CONCURRENT):
                for bound, dec in decoders.items():
                    eng = dec.engine(CONCURRENT)
                    r = await streams(eng, prompts, clients, MAX_NEW_TOKENS, WINDOW_S)
                    await eng.close()
                    results.setdefault((bound, clients), []).append(r["tok_s"])

    asyncio.run(measure())
    for dec in decoders.values():
        dec.close()
    out = [f"IO binding on the CPU ({MODEL}, float32, in-process engine, greedy, {ROUNDS} alternating windows of "
           f"{WINDOW_S:.0f} s, median):"]
    for clients in (1, CONCURRENT):
        off, on = (statistics.median(results[(b, clients)]) for b in (False, True))
        out.append(f"  {clients} stream(s): numpy cache {off:6.1f} tok/s, bound OrtValue cache {on:6.1f} tok/s  "
                   f"RATIO bound / numpy {on / off:4.2f}x  (io_binding=auto keeps numpy on the CPU below 1.0)")
    return out
