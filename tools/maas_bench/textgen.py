"""text-generator: decoding speed of the served model against transformers ``generate``, and continuous batching.

All measured in this one run, on this machine, with the same prompts:
- single stream: one request at a time, greedy, through gRPC (GenerateStream), tokens / wall time of the whole
  request (prefill included), for the float32 and the int8 model; the baseline is transformers ``generate``
  (greedy, KV cache, in-process, no RPC) on the same weights (the GGUF dequantised to float32);
- continuous batching: 8 clients streaming back to back (sampled, different seeds) against 1, aggregate tok/s,
  in alternating windows (1, 8, 1, 8, ...) so a slow patch of a noisy machine hits both sides;
- time to first token (first streamed text) for one client alone, and with the 8 clients running;
- the same 8-vs-1 ratio for ONNX Runtime alone (no server, no sampling, no prefills): one decoding step for 8
  rows and for 1 row, timed after each round of the windows above, as 8 x the 1-row step time / the 8-row step
  time: what the served ratio would be if nothing but the model took time.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Callable

import grpc

from maas.textgen.v1 import textgen_pb2 as pb
from maas.textgen.v1 import textgen_pb2_grpc
from maas_bench.common import ROOT, service

MAX_NEW_TOKENS = 128
PROMPTS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a piano produces sound, from the key to the string.",
    "Describe a walk through a busy market in a city you love, with every sense.",
    "Write the opening chapter of a mystery novel set on a night train.",
]
CONCURRENT = 8
WINDOW_S = 10.0
ROUNDS = 3  # alternating windows per side


def chat(text: str) -> list[pb.ChatMessage]:
    return [pb.ChatMessage(role="user", content=text)]


async def stream_once(stub, text: str, **kw) -> tuple[int, float, float]:  # noqa: ANN001
    """(tokens, seconds to the first text, seconds in all) of one streamed request."""
    started = time.perf_counter()
    first = None
    tokens = 0
    async for event in stub.GenerateStream(pb.GenerateStreamRequest(messages=chat(text), **kw)):
        if first is None and event.text:
            first = time.perf_counter() - started
        if event.finish_reason:
            tokens = event.completion_tokens
    return tokens, first if first is not None else float("nan"), time.perf_counter() - started


async def single_stream(address: str) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = textgen_pb2_grpc.TextGeneratorStub(ch)
        await stream_once(stub, "Hello", max_new_tokens=8, temperature=0)  # warm
        tokens, seconds, ttfts = 0, 0.0, []
        for text in PROMPTS:
            n, ttft, total = await stream_once(stub, text, max_new_tokens=MAX_NEW_TOKENS, temperature=0)
            tokens, seconds = tokens + n, seconds + total
            ttfts.append(ttft)
        return {"tok_s": tokens / seconds, "tokens": tokens, "ttft_ms": statistics.median(ttfts) * 1e3}


def alternating(address: str, sides: tuple[int, ...], between: Callable[[], None] = lambda: None,
                ) -> dict[int, dict[str, float]]:
    """``concurrent`` for each number of clients in ``sides``, ROUNDS times in turn (``between`` runs after each
    round); tok/s over all its windows."""
    runs: dict[int, list[dict[str, float]]] = {k: [] for k in sides}
    for _ in range(ROUNDS):
        for k in sides:
            runs[k].append(asyncio.run(concurrent(address, k)))
        between()
    return {k: {"tok_s": sum(r["tokens"] for r in rs) / sum(r["seconds"] for r in rs),
                "ttft_ms": statistics.median(r["ttft_ms"] for r in rs)} for k, rs in runs.items()}


async def concurrent(address: str, clients: int) -> dict[str, float]:
    """``clients`` streams back to back for WINDOW_S seconds (after a warm-up); aggregate tok/s and TTFT."""
    async with grpc.aio.insecure_channel(address) as ch:
        stub = textgen_pb2_grpc.TextGeneratorStub(ch)
        tokens, ttfts = 0, []
        measuring = False
        stop_at = time.monotonic() + 3.0 + WINDOW_S

        async def client(i: int) -> None:
            nonlocal tokens
            seed = i
            while time.monotonic() < stop_at:
                n, ttft, _ = await stream_once(stub, PROMPTS[seed % len(PROMPTS)], max_new_tokens=MAX_NEW_TOKENS,
                                               temperature=0.7, top_p=0.95, seed=seed)
                if measuring:
                    tokens += n
                    ttfts.append(ttft)
                seed += clients

        async def window() -> None:
            nonlocal measuring
            await asyncio.sleep(3.0)
            measuring = True

        marker = asyncio.create_task(window())
        t0 = time.monotonic() + 3.0
        await asyncio.gather(*(client(i) for i in range(clients)))
        await marker
        elapsed = time.monotonic() - t0
        return {"tok_s": tokens / elapsed, "tokens": tokens, "seconds": elapsed,
                "ttft_ms": statistics.median(ttfts) * 1e3 if ttfts else float("nan")}


class OnnxRuntimeAlone:
    """One decoding step of the bare model for 1 row and for CONCURRENT rows, each with ``cached`` tokens in its
    cache (the middle of a benchmark request: a 44-47 token chat prompt, then 128 tokens), in the engine's cache
    layout (spare columns included). ``round()`` times both, ``runs`` steps each; ``medians()``: seconds a step."""

    def __init__(self, model: str, cached: int = 110, runs: int = 20) -> None:
        import numpy as np

        from maas_runtime.executor import BoundedExecutor
        from maas_runtime.generation.decoder import SPARE_COLUMNS, DecoderModel, KVCache
        from maas_runtime.onnx_model import OnnxModel
        from maas_runtime.settings import ModelSettings

        self.runs = runs
        settings = ModelSettings(executor_workers=1)  # (the executor is never used: steps run here, in turn)
        self.decoder = DecoderModel(OnnxModel.load(ROOT / "models", model, settings, BoundedExecutor(1)))
        rng = np.random.default_rng(0)
        self.feeds = {}
        for rows in (1, CONCURRENT):
            spare = SPARE_COLUMNS if self.decoder.appends else 0
            shape = (rows, self.decoder.heads, cached + spare, self.decoder.head_dim)
            past = [rng.standard_normal(shape).astype(self.decoder.kv_dtype) for _ in self.decoder.past_names]
            cache = KVCache(past, np.full(rows, cached, dtype=np.int64), cached)
            ids = rng.integers(0, self.decoder.vocab_size, (rows, 1))
            self.feeds[rows] = (ids, cache.attention_mask(1), cache.lengths[:, None].copy(), cache.past)
        self.times: dict[int, list[float]] = {k: [] for k in self.feeds}
        self.round(record=False)  # warm-up

    def round(self, record: bool = True) -> None:
        for rows, feeds in self.feeds.items():
            started = time.perf_counter()
            for _ in range(self.runs):
                self.decoder.forward(*feeds, last_only=True)
            if record:
                self.times[rows].append((time.perf_counter() - started) / self.runs)

    def medians(self) -> dict[int, float]:
        return {k: statistics.median(v) for k, v in self.times.items()}


def transformers_baseline() -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from maas_modelbuild.recipes.smollm2 import GGUF_FILE, gguf_dir

    torch.set_num_threads(os.cpu_count() or 1)
    src = str(gguf_dir())
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32).eval()
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]

    def run(text: str, n: int) -> int:
        ids = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                                 eos_token_id=eos, pad_token_id=eos[0])
        return int(out.shape[1] - ids.shape[1])

    run("Hello", 8)
    tokens, started = 0, time.perf_counter()
    for text in PROMPTS:
        tokens += run(text, MAX_NEW_TOKENS)
    return {"tok_s": tokens / (time.perf_counter() - started), "tokens": tokens}


def run() -> list[str]:
    load_before = os.getloadavg()[0]
    rows: dict[str, dict[str, float]] = {}
    alone: dict[str, dict[int, float]] = {}
    for quant in ("fp32", "int8"):
        with service("text_generator", "TEXTGEN_", quantization=quant, max_batch_size=16) as address:
            rows[f"{quant} single"] = asyncio.run(single_stream(address))
            bare = OnnxRuntimeAlone("smollm2-135m-instruct" + ("" if quant == "fp32" else f"-{quant}"))
            for k, row in alternating(address, (1, CONCURRENT), between=bare.round).items():
                rows[f"{quant} x{k}"] = row
            alone[quant] = bare.medians()
    torch = transformers_baseline()
    out = [f"text-generator (SmolLM2-135M-Instruct), {os.cpu_count()} cores, up to {MAX_NEW_TOKENS} new tokens:"]
    load_after, cores = os.getloadavg()[0], os.cpu_count() or 1
    out.append(f"  machine load (1-min average) before / after the run: {load_before:.1f} / {load_after:.1f} on {cores}"
               " cores" + ("  -- BUSY: other processes were using the CPU before it started; figures not comparable"
                           if load_before > 0.5 * cores else ""))
    for quant in ("fp32", "int8"):
        s = rows[f"{quant} single"]
        out.append(f"  {quant:4s} single stream (greedy, gRPC)  {s['tok_s']:7.1f} tok/s  ({s['tokens']:.0f} tokens)  "
                   f"TTFT p50 {s['ttft_ms']:6.1f} ms")
        for k in (1, CONCURRENT):
            r = rows[f"{quant} x{k}"]
            out.append(f"  {quant:4s} {k} stream(s) back to back       {r['tok_s']:7.1f} tok/s aggregate  "
                       f"TTFT p50 {r['ttft_ms']:6.1f} ms")
    out.append(f"  transformers generate (greedy, fp32)   {torch['tok_s']:7.1f} tok/s  ({torch['tokens']:.0f} tokens, "
               "in-process, no RPC)")
    for quant in ("fp32", "int8"):
        out.append(f"  RATIO {quant} single stream / transformers generate:   "
                   f"{rows[f'{quant} single']['tok_s'] / torch['tok_s']:5.2f}x  (goal >= 3, quantised)")
    for quant in ("fp32", "int8"):
        out.append(f"  RATIO {quant} aggregate {CONCURRENT} streams / 1 stream:          "
                   f"{rows[f'{quant} x{CONCURRENT}']['tok_s'] / rows[f'{quant} x1']['tok_s']:5.2f}x  (goal >= 5)")
    for quant in ("fp32", "int8"):
        one, many = alone[quant][1], alone[quant][CONCURRENT]
        out.append(f"  {quant:4s} ONNX Runtime alone (no server), one decoding step: 1 row {one * 1e3:5.1f} ms, "
                   f"{CONCURRENT} rows {many * 1e3:5.1f} ms: {CONCURRENT} rows / 1 row {CONCURRENT * one / many:4.2f}x "
                   "tokens a second")
    return out
