"""The CUDA path measured against the CPU provider of the same machine, in one run (``tools/gpu-check.sh``).

For every provider asked for (``--providers cuda,cpu``), on the models found in ``--models``:

* text generation (the serving engine in-process, greedy, 128 new tokens, chat prompts): aggregate tok/s at 1, 8,
  32 and 64 concurrent streams and time to first token (p50 / p99): CUDA with the float16 build and its cache on
  the device (IO binding), the CPU with float32 and int8 (numpy cache, as served there);
* nlp: texts/s of the text encoder (EmbedText) and the sentiment model (AnalyzeSentiment) at batch 1 and 32;
* music: tokens/s of the music transformer through the engine at 1 and 8 streams (float16 on CUDA);
* agreement: CUDA float16 greedy tokens against the float32 model's PyTorch reference (recorded in its manifest,
  which the float32 ONNX graph reproduces) on the build's 3 chat prompts, the first position where they part;
  embeddings, CUDA against CPU, cosine (goal >= 0.999).

Then the ratios against the goals of the issue (32 streams >= 20x the CPU, one stream >= 300 tok/s, nlp batch 32
>= 10x). With ``--providers cpu`` it runs the CPU half alone (what this repository's machine can check).
Only the runtime is imported (no gRPC server), so it runs where the services' other dependencies are missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from maas_bench.engine import Decoder, chat_prompts, greedy, streams  # noqa: E402

TEXT = "smollm2-135m-instruct"
MUSIC = "music-transformer"
STREAMS = (1, 8, 32, 64)
MUSIC_STREAMS = (1, 8)
NEW_TOKENS = 128
WINDOW_S = 8.0
DRY = {"run": False}  # --dry-run: what would run on CUDA runs on the CPU provider (to check the script here)


def device(provider: str) -> tuple[str, bool]:
    """(providers setting, require a GPU) for a provider of the check."""
    if provider == "cuda" and not DRY["run"]:
        return "cuda", True
    return "cpu", False
PROMPTS = [
    "Write a long story about a lighthouse keeper who finds a message in a bottle.",
    "Explain in detail how a piano produces sound, from the key to the string.",
    "Describe a walk through a busy market in a city you love, with every sense.",
    "Write the opening chapter of a mystery novel set on a night train.",
]
SENTENCES = [
    "A slow, sad piano piece for a rainy night, with long silences between the notes.",
    "The band played a fast and joyful reel that had the whole room dancing until dawn.",
    "I loved the film's soundtrack, but the ending felt rushed and the dialogue was flat.",
    "Quiet strings rise under a lone trumpet, like the first light over a frozen lake.",
]


def line(text: str) -> None:
    print(text, flush=True)


def text_variants(models: Path, provider: str) -> list[tuple[str, bool]]:
    """(model folder, IO binding) measured on a provider: what ``auto`` serves there, plus int8 on the CPU."""
    if provider == "cuda":
        return [(f"{TEXT}-fp16", True)]
    return [(name, False) for name in (TEXT, f"{TEXT}-int8") if any((models / name).glob("*/model.onnx"))]


def gpu_memory() -> str:
    """What this process holds on the GPU (nvidia-smi), e.g. "1234 MiB"."""
    import os
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "n/a"
    mine = [row.split(",")[1].strip() for row in out.splitlines() if row.split(",")[0].strip() == str(os.getpid())]
    return mine[0] if mine else "n/a"


async def text_rows(models: Path, provider: str, prompts: list[list[int]]) -> dict[tuple[str, int], dict]:
    rows = {}
    for name, bound in text_variants(models, provider):
        dec = Decoder(models, name, device(provider)[0], io_binding=bound, require_gpu=device(provider)[1])
        for clients in STREAMS:
            engine = dec.engine(max_batch_size=clients)
            await streams(engine, prompts, clients, 4, window_s=0.5, warmup_s=0)  # every shape once
            r = await streams(engine, prompts, clients, NEW_TOKENS, WINDOW_S)
            await engine.close()
            rows[(name, clients)] = r
            line(f"  {provider:4s} {name:28s} {clients:2d} streams  {r['tok_s']:8.1f} tok/s  TTFT p50 "
                 f"{r['ttft_p50_ms']:7.1f} ms  p99 {r['ttft_p99_ms']:7.1f} ms  ({r['requests']} requests)"
                 + (f"  GPU memory of this process {gpu_memory()}" if provider == "cuda" else ""))
        dec.close()
    return rows


async def agreement(models: Path, prompts_dir: Path) -> list[int | None]:
    """CUDA float16 greedy tokens against the float32 PyTorch reference of the build's parity prompts."""
    manifest = json.loads((models / TEXT / "1" / "manifest.json").read_text())
    reference = manifest["evaluation"]["pytorch_greedy_reference"]
    prompts = json.loads((prompts_dir / "parity_prompts.json").read_text())
    dec = Decoder(models, f"{TEXT}-fp16", device("cuda")[0], io_binding=True, require_gpu=device("cuda")[1])
    engine = dec.engine(max_batch_size=4)
    firsts = []
    for prompt, ref in zip(prompts, reference["tokens"]):
        got = await greedy(engine, prompt, reference["max_new_tokens"])
        got = got[:len(ref)]
        firsts.append(next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), None))
    await engine.close()
    dec.close()
    return firsts


def encoder_batch(model, texts: list[str]) -> dict[str, np.ndarray]:  # noqa: ANN001
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model.directory / model.manifest.get("tokenizer", "tokenizer.json")))
    tok.enable_truncation(int(model.manifest.get("max_length", 256)))
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}


def nlp_rows(models: Path, provider: str) -> dict[tuple[str, int], float]:
    from maas_runtime.executor import BoundedExecutor
    from maas_runtime.onnx_model import OnnxModel
    from maas_runtime.settings import ModelSettings

    rows = {}
    where, strict = device(provider)
    settings = ModelSettings(providers=where, executor_workers=1, require_gpu=strict)
    for name in ("text-encoder", "sentiment"):
        if not (models / name).is_dir():
            continue
        model = OnnxModel.load(models, name, settings, BoundedExecutor(1))
        for batch in (1, 32):
            feeds = encoder_batch(model, [SENTENCES[i % len(SENTENCES)] for i in range(batch)])
            model.run(feeds)
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < 3.0:
                model.run(feeds)
                done += batch
            rows[(name, batch)] = done / (time.perf_counter() - started)
            line(f"  {provider:4s} {name:28s} batch {batch:2d}  {rows[(name, batch)]:9.1f} texts/s")
        model.executor.shutdown()
    return rows


def embeddings(models: Path, provider: str) -> np.ndarray:
    from maas_runtime.executor import BoundedExecutor
    from maas_runtime.onnx_model import OnnxModel
    from maas_runtime.settings import ModelSettings

    model = OnnxModel.load(models, "text-encoder", ModelSettings(providers=device(provider)[0]), BoundedExecutor(1))
    out = model.run(encoder_batch(model, SENTENCES))
    model.executor.shutdown()
    return next(iter(out.values()))


async def music_rows(models: Path, provider: str, prompts: list[list[int]]) -> dict[int, float]:
    name = f"{MUSIC}-fp16" if provider == "cuda" else MUSIC
    if not (models / name).is_dir():
        return {}
    dec = Decoder(models, name, device(provider)[0], io_binding=provider == "cuda", require_gpu=device(provider)[1])
    rows = {}
    for clients in MUSIC_STREAMS:
        engine = dec.engine(max_batch_size=clients)
        await streams(engine, prompts, clients, 4, window_s=0.5, warmup_s=0)
        r = await streams(engine, prompts, clients, 512, WINDOW_S, temperature=1.0)
        await engine.close()
        rows[clients] = r["tok_s"]
        line(f"  {provider:4s} {name:28s} {clients:2d} streams  {r['tok_s']:8.1f} music tokens/s")
    dec.close()
    return rows


def main() -> None:
    global WINDOW_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--prompts", type=Path, default=None, help="folder of parity_prompts.json / music_prompts.json "
                    "(tools/gpu-stage.sh writes them); default: made here from the models")
    ap.add_argument("--providers", default="cuda,cpu")
    ap.add_argument("--window", type=float, default=WINDOW_S, help="seconds a measurement counts tokens")
    ap.add_argument("--dry-run", action="store_true", help="run the CUDA half on the CPU provider (checks the "
                    "script where there is no GPU; its figures mean nothing)")
    args = ap.parse_args()
    DRY["run"] = args.dry_run
    WINDOW_S = args.window
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    import onnxruntime as ort

    if "cuda" in providers and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    line(f"onnxruntime {ort.__version__}, providers {ort.get_available_providers()}")
    prompts_dir = args.prompts or write_prompts(args.models, Path("/tmp/maas-gpu-check"))
    chat = chat_prompts(args.models / TEXT / "1", PROMPTS) if (args.models / TEXT).is_dir() else \
        json.loads((prompts_dir / "chat_prompts.json").read_text())
    music = json.loads((prompts_dir / "music_prompts.json").read_text()) \
        if (prompts_dir / "music_prompts.json").exists() else []
    text, nlp, notes = {}, {}, {}
    for provider in providers:
        line(f"{provider}: text generation ({NEW_TOKENS} new tokens, greedy, {WINDOW_S:.0f} s windows)")
        text[provider] = asyncio.run(text_rows(args.models, provider, chat))
        line(f"{provider}: nlp")
        nlp[provider] = nlp_rows(args.models, provider)
        if music:
            line(f"{provider}: music")
            notes[provider] = asyncio.run(music_rows(args.models, provider, music))
    if "cuda" in providers and "cpu" in providers:
        summary(text, nlp, notes)
        line(f"agreement: float16 CUDA greedy vs float32 PyTorch, first differing position per prompt "
             f"(None: all equal): {asyncio.run(agreement(args.models, prompts_dir))}")
        a, b = embeddings(args.models, "cuda"), embeddings(args.models, "cpu")
        cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        line(f"agreement: text-encoder embeddings CUDA vs CPU, min cosine {cos.min():.6f} (goal >= 0.999)")


def summary(text: dict, nlp: dict, notes: dict) -> None:
    cuda = {k[1]: v["tok_s"] for k, v in text["cuda"].items()}
    for name in {k[0] for k in text["cpu"]}:
        cpu = {k[1]: v["tok_s"] for k, v in text["cpu"].items() if k[0] == name}
        for clients in STREAMS:
            line(f"  RATIO text {clients:2d} streams, CUDA fp16 / CPU {name}: {cuda[clients] / cpu[clients]:7.1f}x"
                 + ("  (goal >= 20)" if clients == 32 else ""))
    line(f"  CUDA single stream {cuda[1]:.1f} tok/s (goal >= 300)")
    for (name, batch), rate in nlp["cuda"].items():
        line(f"  RATIO {name} batch {batch:2d}, CUDA / CPU: {rate / nlp['cpu'][(name, batch)]:7.1f}x"
             + ("  (goal >= 10)" if batch == 32 else ""))
    for clients, rate in notes.get("cuda", {}).items():
        if clients in notes.get("cpu", {}):
            line(f"  RATIO music {clients} streams, CUDA fp16 / CPU fp32: {rate / notes['cpu'][clients]:7.1f}x")


def write_prompts(models: Path, folder: Path) -> Path:
    """The prompts as token ids (where the tokenizers and the music vocabulary are at hand: here, not on the
    device machine): the text model's parity and benchmark chat prompts, and music conditioning prefixes."""
    folder.mkdir(parents=True, exist_ok=True)
    if (models / TEXT).is_dir():
        from maas_modelbuild.recipes import smollm2

        (folder / "parity_prompts.json").write_text(json.dumps(smollm2.parity_prompts(models / TEXT / "1")))
        (folder / "chat_prompts.json").write_text(json.dumps(chat_prompts(models / TEXT / "1", PROMPTS)))
    if (models / MUSIC).is_dir():
        from music_generator.vocab import STYLES, TEMPOS, Key, Vocabulary, make_tokenizer

        manifest = json.loads((models / MUSIC / "1" / "manifest.json").read_text())
        vocab = Vocabulary(make_tokenizer(str(models / MUSIC / "1" / manifest["tokenizer"])))
        prefixes = [vocab.prefix(style, Key(0, mode), tempo, 16) for style in STYLES for mode in ("major", "minor")
                    for tempo in TEMPOS[:2]]
        (folder / "music_prompts.json").write_text(json.dumps([list(map(int, p)) for p in prefixes]))
    return folder


if __name__ == "__main__":
    main()
