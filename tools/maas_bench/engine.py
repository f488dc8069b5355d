"""The generation engine driven in-process (no gRPC): a decoder loaded on a chosen provider, precision and cache
placement, and N concurrent streams decoding back to back in a timed window. Used by the IO-binding benchmark
(``make bench``) and by the GPU check (``tools/gpu_check.py``), which runs where the services' other
dependencies may be missing: this module needs only the runtime (numpy, onnxruntime, onnx, pydantic-settings,
prometheus-client)."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np


class Decoder:
    """``repository/name`` as the engine serves it, on ``providers`` ("cpu", "cuda"), cache bound or not."""

    def __init__(self, repository: Path, name: str, providers: str, io_binding: bool, threads: int = 0,
                 require_gpu: bool = False) -> None:
        from maas_runtime.executor import BoundedExecutor
        from maas_runtime.generation import DecoderModel
        from maas_runtime.onnx_model import OnnxModel
        from maas_runtime.settings import ModelSettings

        settings = ModelSettings(providers=providers, executor_workers=1, intra_op_threads=threads,
                                 require_gpu=require_gpu)
        self.executor = BoundedExecutor(1)
        self.model = OnnxModel.load(repository, name, settings, self.executor)
        self.decoder = DecoderModel(self.model, io_binding=io_binding)

    @property
    def provider(self) -> str:
        return self.model.provider

    def engine(self, max_batch_size: int):  # -> GenerationEngine
        from maas_runtime.generation import GenerationEngine

        return GenerationEngine(self.decoder, self.executor, max_batch_size=max_batch_size,
                                max_queue_size=max(64, 2 * max_batch_size))

    def close(self) -> None:
        self.executor.shutdown()


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def streams(engine, prompts: Sequence[Sequence[int]], clients: int, max_new_tokens: int,  # noqa: ANN001
                  window_s: float, warmup_s: float = 1.0, temperature: float = 0.0) -> dict[str, float]:
    """``clients`` callers, each generating back to back; tokens counted inside the window after a warm-up, and
    each request's time to its first token."""
    from maas_runtime.generation import SamplingParams

    counting = False
    tokens, ttfts = 0, []
    stop_at = time.monotonic() + warmup_s + window_s

    async def client(i: int) -> None:
        nonlocal tokens
        k = i
        while time.monotonic() < stop_at:
            started = time.monotonic()
            params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=k)
            first = True
            async for _ in engine.generate(prompts[k % len(prompts)], params):
                if first:
                    ttfts.append(time.monotonic() - started)
                    first = False
                if counting:
                    tokens += 1
                if time.monotonic() >= stop_at:
                    break
            k += clients

    async def window() -> float:
        nonlocal counting
        await asyncio.sleep(warmup_s)
        counting = True
        started = time.monotonic()
        await asyncio.sleep(window_s)
        counting = False
        return time.monotonic() - started

    marker = asyncio.ensure_future(window())
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = await marker
    return {"tok_s": tokens / elapsed, "tokens": tokens, "ttft_p50_ms": percentile(ttfts, 50) * 1e3,
            "ttft_p99_ms": percentile(ttfts, 99) * 1e3, "requests": len(ttfts)}


async def greedy(engine, prompt: Sequence[int], n: int) -> list[int]:  # noqa: ANN001
    from maas_runtime.generation import SamplingParams

    return [e.token_id async for e in engine.generate(prompt, SamplingParams(max_new_tokens=n, temperature=0.0))]


def chat_prompts(model_dir: Path, texts: Sequence[str]) -> list[list[int]]:
    """Chat-templated token ids of ``texts`` (one user message each), as the text-generator renders them."""
    import json

    from tokenizers import Tokenizer

    from text_generator.chat import ChatTemplate

    manifest = json.loads((model_dir / "manifest.json").read_text())
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    chat = ChatTemplate((model_dir / manifest["chat_template"]).read_text(), manifest.get("bos_token"),
                        manifest.get("eos_token"))
    return [tok.encode(chat.render([("user", text)]), add_special_tokens=False).ids for text in texts]
