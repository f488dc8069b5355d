"""Half-precision builds for CUDA: SmolLM2-135M-Instruct and the music transformer with float16 weights and cache.

Each is its float32 build converted by ONNX Runtime's own converter (``onnxruntime.transformers.float16``: every
initializer and float node to float16), keeping float32 where precision needs it:

* the **logits** leave the graph as float32 (the sampler's softmax and the log-probabilities a caller reads come
  from them; the converter casts the last MatMul's output);
* the **KV cache** inputs and outputs are float16: half the cache memory and half the bytes a step reads, which is
  what a GPU decoding step is bound by.

Nothing else changes: the same I/O names, the same cache layout (``kv_cache`` in the manifest), the same
tokenizer files, so the serving code runs either build (``TEXTGEN_QUANTIZATION`` / ``MUSICGEN_QUANTIZATION``:
``auto`` takes these under CUDA).

Evaluation, in each manifest: held-out perplexity of the float16 graph next to the float32 graph's, computed by
the same code on the same tokens (``maas_runtime.generation.DecoderModel``, the serving decoder), goal within
+1 %. It is measured here on ONNX Runtime's CPU provider, which runs float16 nodes with its float16 kernels and
puts float32 casts around the nodes it has none for; ``tools/gpu-check.sh`` measures the same graphs on CUDA.
The text model also records where its greedy tokens first part from float32's on the build's chat prompts.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from maas_modelbuild.core import BuildContext, Recipe

log = logging.getLogger("maas.modelbuild.float16")

KEEP_FLOAT32 = ("logits",)
PPL_LIMIT = 0.01  # +1 % held-out perplexity against float32


def convert(src: Path, dst: Path) -> dict[str, Any]:
    """``src/model.onnx`` (float32) -> ``dst/model.onnx`` (float16, logits kept float32); the other files copied."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    started = time.monotonic()
    model = onnx.load(str(src / "model.onnx"))
    half = convert_float_to_float16(model, keep_io_types=list(KEEP_FLOAT32))
    onnx.save(half, str(dst / "model.onnx"))
    for path in src.iterdir():
        if path.is_file() and path.name not in ("model.onnx", "manifest.json"):
            shutil.copy2(path, dst / path.name)
    log.info("float16 conversion of %s in %.0fs", src, time.monotonic() - started)
    return {"tool": "onnxruntime.transformers.float16.convert_float_to_float16", "float32_io": list(KEEP_FLOAT32),
            "bytes": (dst / "model.onnx").stat().st_size, "float32_bytes": (src / "model.onnx").stat().st_size}


def decoder(directory: Path, manifest: dict[str, Any]) -> Any:
    """The serving decoder over ``directory/model.onnx`` on the CPU provider."""
    from maas_modelbuild import causal_lm
    from maas_runtime.executor import BoundedExecutor
    from maas_runtime.generation import DecoderModel
    from maas_runtime.onnx_model import OnnxModel

    session = causal_lm.session(directory / "model.onnx")
    return DecoderModel(OnnxModel(manifest.get("name", directory.name), 1, directory, manifest, session,
                                  BoundedExecutor(1)))


def negative_log_likelihood(dec: Any, ids: Sequence[int], positions: np.ndarray | None = None, skip: int = 0,
                            chunk: int = 256) -> tuple[float, int]:
    """Summed NLL of ids[skip+1:] given the tokens before each, one cached pass in chunks (the engine's cache)."""
    from maas_runtime.generation import KVCache

    ids = np.asarray(ids, dtype=np.int64)
    pos = np.arange(len(ids), dtype=np.int64) if positions is None else np.asarray(positions, dtype=np.int64)
    cache, total, count = KVCache.empty(dec, 1), 0.0, 0
    for start in range(0, len(ids) - 1, chunk):
        piece = ids[start:start + chunk]
        logits, present = dec.forward(piece[None], cache.attention_mask(len(piece)),
                                      pos[start:start + len(piece)][None], cache.past)
        cache = cache.advanced(present, dec.appends)
        x = logits[0].astype(np.float64)
        lp = x - x.max(-1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
        for i in range(len(piece)):
            t = start + i + 1
            if skip < t < len(ids):
                total -= lp[i, ids[t]]
                count += 1
    return total, count


def _kept(base: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: base[k] for k in keys if k in base}


def _io(dec: Any) -> dict[str, Any]:
    return {"inputs": [t.as_dict() for t in dec.model.inputs], "outputs": [t.as_dict() for t in dec.model.outputs]}


def _first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def greedy(dec: Any, prompt: Sequence[int], n: int, eos: Sequence[int]) -> list[int]:
    from maas_runtime.generation import KVCache

    cache, tokens = KVCache.empty(dec, 1), []
    feed = np.asarray(prompt, dtype=np.int64)
    while len(tokens) < n and not (tokens and tokens[-1] in eos):
        start = int(cache.lengths[0])
        logits, present = dec.forward(feed[None], cache.attention_mask(len(feed)),
                                      np.arange(start, start + len(feed), dtype=np.int64)[None], cache.past,
                                      last_only=True)
        cache = cache.advanced(present, dec.appends)
        tokens.append(int(logits[0, -1].argmax()))
        feed = np.asarray([tokens[-1]], dtype=np.int64)
    return tokens


def _check(name: str, ppl: float, base: float) -> float:
    change = ppl / base - 1
    if not math.isfinite(ppl) or change > PPL_LIMIT:
        raise RuntimeError(f"{name}: float16 perplexity {ppl:.4f} is {change:+.2%} against float32 {base:.4f} "
                           f"(limit +{PPL_LIMIT:.0%})")
    return change


# ---------------------------------------------------------------------------------------------- text
def build_text(ctx: BuildContext) -> dict[str, Any]:
    from maas_modelbuild.recipes import smollm2

    base_dir = ctx.dependency(smollm2.NAME)
    base = json.loads((base_dir / "manifest.json").read_text())
    conversion = convert(base_dir, ctx.out_dir)
    half, full = decoder(ctx.out_dir, base), decoder(base_dir, base)
    ids = smollm2.heldout_ids(base_dir)
    (nll16, n), (nll32, _) = negative_log_likelihood(half, ids), negative_log_likelihood(full, ids)
    ppl16, ppl32 = math.exp(nll16 / n), math.exp(nll32 / n)
    change = _check(ctx.recipe.name, ppl16, ppl32)
    prompts = smollm2.parity_prompts(base_dir)
    eos = base["eos_token_ids"]
    divergence = []
    for prompt in prompts:
        a, b = greedy(half, prompt, smollm2.PARITY_TOKENS, eos), greedy(full, prompt, smollm2.PARITY_TOKENS, eos)
        divergence.append(_first_divergence(a, b))
    log.info("%s: perplexity %.4f (float32 %.4f, %+.2f%%), greedy first divergence %s", ctx.recipe.name, ppl16,
             ppl32, 100 * change, divergence)
    keep = ("kv_cache", "vocab_size", "tokenizer", "tokenizer_files", "chat_template", "bos_token", "eos_token",
            "eos_token_ids", "pad_token_id", "adds_special_tokens", "context_length", "task", "architecture",
            "source", "license", "chat_roles")
    return {
        **_kept(base, keep), **_io(half),
        "precision": "fp16", "float16": conversion,
        "evaluation": {
            "heldout_perplexity": round(ppl16, 4),
            "heldout_perplexity_fp32_onnx": round(ppl32, 4),
            "heldout_perplexity_change": round(change, 5),
            "heldout_tokens_scored": n,
            "measured_on": "CPUExecutionProvider",
            "greedy_first_divergence_vs_fp32": {"prompts": len(prompts), "max_new_tokens": smollm2.PARITY_TOKENS,
                                                "positions": divergence},
        },
    }


# ---------------------------------------------------------------------------------------------- music
def build_music(ctx: BuildContext) -> dict[str, Any]:
    from maas_modelbuild.recipes import music_corpus, music_transformer as mt
    from music_generator.vocab import Vocabulary, make_tokenizer

    base_dir = ctx.dependency(mt.NAME)
    base = json.loads((base_dir / "manifest.json").read_text())
    conversion = convert(base_dir, ctx.out_dir)
    half, full = decoder(ctx.out_dir, base), decoder(base_dir, base)
    vocab = Vocabulary(make_tokenizer(str(base_dir / base["tokenizer"])))
    p = base["params"]
    pieces = mt.prepare(music_corpus.load(ctx.dependency("music-corpus")), vocab)
    _, held = mt.split(pieces, p["seed"], p["heldout_fraction"])
    totals = {"fp16": [0.0, 0], "fp32": [0.0, 0]}
    for piece in held:  # the held-out pieces the float32 build was evaluated on, numbered by its BarClock
        ids, positions = mt.window(vocab, piece, 0, p["window_tokens"])
        for key, dec in (("fp16", half), ("fp32", full)):
            nll, n = negative_log_likelihood(dec, ids, positions, skip=5, chunk=len(ids))
            totals[key][0] += nll
            totals[key][1] += n
    ppl16, ppl32 = (math.exp(totals[k][0] / totals[k][1]) for k in ("fp16", "fp32"))
    change = _check(ctx.recipe.name, ppl16, ppl32)
    log.info("%s: perplexity %.4f (float32 %.4f, %+.2f%%) on %d pieces", ctx.recipe.name, ppl16, ppl32,
             100 * change, len(held))
    keep = ("task", "kv_cache", "vocab_size", "context_length", "trained_window_tokens", "position_ids", "tokenizer",
            "tokenization", "styles", "license")
    return {
        **_kept(base, keep), **_io(half),
        "precision": "fp16", "float16": conversion,
        "evaluation": {
            "heldout_perplexity": round(ppl16, 4),
            "heldout_perplexity_fp32_onnx": round(ppl32, 4),
            "heldout_perplexity_change": round(change, 5),
            "heldout_pieces": len(held), "heldout_tokens_scored": totals["fp16"][1],
            "measured_on": "CPUExecutionProvider",
        },
    }


TEXT_RECIPE = Recipe(
    name="smollm2-135m-instruct-fp16",
    version=1,
    build=build_text,
    description="SmolLM2-135M-Instruct, float16 weights and KV cache (float32 logits), for the CUDA provider",
    sources=("onnxruntime", "onnx"),
    params={"keep_float32": list(KEEP_FLOAT32), "perplexity_limit": PPL_LIMIT},
    depends=("smollm2-135m-instruct",),
    budget_s=120,
)

MUSIC_RECIPE = Recipe(
    name="music-transformer-fp16",
    version=1,
    build=build_music,
    description="The music transformer, float16 weights and KV cache (float32 logits), for the CUDA provider",
    sources=("onnxruntime", "onnx"),
    params={"keep_float32": list(KEEP_FLOAT32), "perplexity_limit": PPL_LIMIT},
    depends=("music-transformer", "music-corpus"),
    budget_s=90,
)
