"""The music model: a small GPT-2 trained here on the music21 corpus (``music-corpus``), served from ONNX.

Data: every piece of the corpus in miditok REMI tokens (one merged stream for all voices), with conditioning
tokens for style, key, tempo and length (``music_generator.vocab``). Each piece's key is estimated
(Krumhansl-Kessler) and the piece transposed to C major or A minor (by at most a tritone): the model learns
music in one key per mode, and the server transposes to the requested key. A seeded 10% of the pieces of each
style is held out before anything is trained. Training windows start at a bar (the piece's first bar 30% of
the time).

Model: GPT-2, 4 layers, 256 wide, 4 heads, 1,024 positions (~3.7 M parameters), AdamW, a fixed number of
steps (the same weights on every machine; budget: 14 minutes on 2 idle cores, evaluation included), exported
with its KV cache by ``maas_modelbuild.causal_lm`` (checked against PyTorch on a padded batch, and on a held-out
window numbered as the server numbers it). Its position embedding also says
where in the bar each token falls and how many notes sound there: position ids are
``index + 1024 * (bar slot + slots * voices)`` (``music_generator.vocab.BarClock``, which the server's engine
numbers tokens with too), embedded as the sum of an index, a bar-slot and a voices embedding.

Evaluation (in the manifest): held-out loss and perplexity per style; then, through the serving pipeline
itself (``music_generator.pipeline`` on the shared generation engine), 100 pieces per style: how many parse
as MIDI with mido and pretty_midi, in-key share with the key constraint off (the model alone) and on (as
served), seed determinism, and pitch-class entropy, notes per bar, polyphony and pitch range against the same
statistics of the style (first bars, same length). Each generated piece is asked for the key, meter and tempo
of a piece of its style (``twins``), so the two sides share their conditions (folk is mostly in 3/4 and 2/4: a
4/4 tune has more notes a bar). That comparison is made twice: with 100 of the style's training pieces (the
issue's "statistics of the training style"; a mean over 100 pieces, ±1-3 %) and with its held-out pieces
(26-87 a style, repeated to 100: a noisier mean, ±2-4.4 %, of music the model never saw).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from maas_modelbuild.core import BuildContext, Recipe
from maas_modelbuild.recipes import music_corpus

log = logging.getLogger("maas.modelbuild.music_transformer")

NAME = "music-transformer"
TOKENIZER_FILE = "tokenizer.json"
# The serving package's vocabulary decides what the model is trained on, and its statistics how it is judged:
# their source is part of the build key (the rest of the pipeline is not: fixing it does not retrain).
SHARED_CODE = ("music_generator/vocab.py", "music_generator/stats.py")

STYLE_DEFAULTS = {  # what a request gets when it does not say (tempo: quarter notes a minute; GM program)
    "chorale": {"tempo_bpm": 84.0, "program": 19},  # church organ
    "folk": {"tempo_bpm": 104.0, "program": 73},  # flute
    "fiddle": {"tempo_bpm": 132.0, "program": 40},  # violin
    "renaissance": {"tempo_bpm": 72.0, "program": 52},  # choir aahs
}

PARAMS: dict[str, Any] = {
    "seed": 5,
    "heldout_fraction": 0.1,
    "model": {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 1024, "dropout": 0.1},
    "window_tokens": 512,
    "batch_size": 8,
    "steps": 450,
    "lr": 2.5e-3,
    "warmup_steps": 30,
    "weight_decay": 0.05,
    "start_of_piece_share": 0.3,
    "wall_clock_cap_s": 1500,  # safety on a crowded machine (the manifest says if it was hit)
    "eval": {"pieces_per_style": 100, "bars": 8, "temperature": 1.0, "top_p": 0.95},
}


def _shared_code_digest() -> str:
    import music_generator

    root = Path(music_generator.__file__).parent.parent
    h = hashlib.sha256()
    for rel in SHARED_CODE:
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- data
def prepare(records: list[dict[str, Any]], vocab: Any) -> list[dict[str, Any]]:
    """Corpus records -> tokenised pieces in C major / A minor (body ids, bar starts, key, tempo bucket)."""
    from music_generator.vocab import canonical_key, canonical_shift, estimate_key, tempo_bucket

    lo, hi = vocab.pitch_range
    pieces = []
    for r in records:
        ts = tuple(r["time_signature"])
        if ts not in vocab.time_signatures:
            continue
        key = estimate_key([n[2] for n in r["notes"]], [n[1] for n in r["notes"]])
        shift = canonical_shift(key)
        notes = [(on, d, p + shift) for on, d, p, *_ in r["notes"] if lo <= p + shift <= hi]
        if len(notes) < 8:
            continue
        ids = vocab.encode_notes(notes, ts)
        bars = [i for i, t in enumerate(ids) if t == vocab.bar]
        if not bars:
            continue
        source_key, key = key, canonical_key(key.mode)
        bpm = r["tempo_bpm"] or STYLE_DEFAULTS[r["style"]]["tempo_bpm"]
        pieces.append({"id": r["id"], "style": r["style"], "ids": ids, "bars": bars, "key": key, "ts": ts,
                       "tempo": tempo_bucket(bpm), "tempo_bpm": bpm, "pitches": [n[2] for n in notes],
                       "source_key": source_key})
    return pieces


def split(pieces: list[dict[str, Any]], seed: int, fraction: float) -> tuple[list, list]:
    by_style = defaultdict(list)
    for p in pieces:
        by_style[p["style"]].append(p)
    train, held = [], []
    for style in sorted(by_style):
        group = sorted(by_style[style], key=lambda p: p["id"])
        random.Random(f"{seed}-{style}").shuffle(group)
        n = max(10, int(len(group) * fraction))
        held += group[:n]
        train += group[n:]
    return train, held


def window(vocab: Any, piece: dict[str, Any], start_bar: int, max_tokens: int) -> tuple[list[int], np.ndarray]:
    """Conditioning prefix + the piece from ``start_bar`` on (EOS when it ends inside the window), and the
    tokens' position ids."""
    from music_generator.vocab import BarClock

    bars_left = len(piece["bars"]) - start_bar
    prefix = vocab.prefix(piece["style"], piece["key"], piece["tempo"], bars_left,
                          "piece" if start_bar == 0 else "mid")
    body = piece["ids"][piece["bars"][start_bar]:]
    room = max_tokens - len(prefix)
    body = body[:room] if len(body) >= room else body + [vocab.eos]
    ids = prefix + body
    return ids, BarClock(vocab, piece["ts"], start_bar)(ids)


def sampler(train: list[dict[str, Any]], vocab: Any, p: dict[str, Any]):  # noqa: ANN201
    """Training windows: a piece (weighted by its bars), then a start bar (the first one ``start_of_piece_share``
    of the time)."""
    rng = random.Random(p["seed"])
    weights = [len(x["bars"]) for x in train]

    def draw() -> tuple[list[int], np.ndarray]:
        piece = rng.choices(train, weights)[0]
        start = 0 if rng.random() < p["start_of_piece_share"] else rng.randrange(len(piece["bars"]))
        return window(vocab, piece, start, p["window_tokens"])

    return draw


def batch_tensors(seqs: list[tuple[list[int], np.ndarray]], pad: int):  # noqa: ANN201
    """(ids, position ids) windows -> right-padded input ids, position ids, attention mask and labels."""
    import torch

    width = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    positions = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, pos) in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        positions[i, :len(s)] = torch.from_numpy(pos)
        labels[i, 6:len(s)] = torch.tensor(s[6:])  # no loss on the conditioning prefix
        mask[i, :len(s)] = 1
    return ids, positions, mask, labels


def bar_position_embedding(wpe: Any, slots: int) -> Any:
    """GPT-2's position embedding for ids ``index + INDEX_SPAN * (slot + slots * voices)``: ``wpe`` (the
    index's) plus one of the bar slot and one of the voices (``music_generator.vocab.BarClock``)."""
    import torch
    from music_generator.vocab import INDEX_SPAN, VOICES

    class BarPositionEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.index = wpe
            self.slot = torch.nn.Embedding(slots, wpe.embedding_dim)
            self.voices = torch.nn.Embedding(VOICES, wpe.embedding_dim)
            torch.nn.init.normal_(self.slot.weight, std=0.02)
            torch.nn.init.normal_(self.voices.weight, std=0.02)

        def forward(self, position_ids: Any) -> Any:
            rest = position_ids // INDEX_SPAN
            return self.index(position_ids % INDEX_SPAN) + self.slot(rest % slots) + self.voices(rest // slots)

    return BarPositionEmbedding()


# ---------------------------------------------------------------------------------------------- training
def train_model(train: list[dict[str, Any]], vocab: Any, p: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(p["seed"])
    m = p["model"]
    config = GPT2Config(vocab_size=vocab.size, n_positions=m["n_positions"], n_embd=m["n_embd"],
                        n_layer=m["n_layer"], n_head=m["n_head"], resid_pdrop=m["dropout"],
                        embd_pdrop=m["dropout"], attn_pdrop=m["dropout"], bos_token_id=vocab.bos,
                        eos_token_id=vocab.eos, pad_token_id=vocab.pad, attn_implementation="sdpa")
    model = GPT2LMHeadModel(config)
    from music_generator.vocab import INDEX_SPAN

    if m["n_positions"] != INDEX_SPAN:
        raise ValueError(f"n_positions must be {INDEX_SPAN}: a position id is index + {INDEX_SPAN} * (slot, voices)")
    model.transformer.wpe = bar_position_embedding(model.transformer.wpe, vocab.bar_slots)
    decay = [q for n, q in model.named_parameters() if q.dim() >= 2]
    no_decay = [q for n, q in model.named_parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": p["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=p["lr"], betas=(0.9, 0.98))
    steps, warm = p["steps"], p["warmup_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    draw = sampler(train, vocab, p)
    model.train()
    started, tokens, losses = time.monotonic(), 0, []
    capped = False
    for step in range(steps):
        ids, positions, mask, labels = batch_tensors([draw() for _ in range(p["batch_size"])], vocab.pad)
        loss = model(input_ids=ids, position_ids=positions, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            log.info("step %d/%d loss %.3f (%.0f tokens/s)", step, steps, np.mean(losses[-50:]),
                     tokens / (time.monotonic() - started))
        if time.monotonic() - started > p["wall_clock_cap_s"]:
            capped = True
            log.warning("wall-clock cap hit at step %d", step)
            break
    model.eval()
    return model, {"steps": step + 1, "tokens": tokens, "seconds": round(time.monotonic() - started, 1),
                   "final_train_loss": round(float(np.mean(losses[-50:])), 4), "wall_clock_cap_hit": capped,
                   "parameters": sum(q.numel() for q in model.parameters())}


def heldout_loss(model: Any, held: list[dict[str, Any]], vocab: Any, max_tokens: int) -> dict[str, Any]:
    """Mean next-token loss on held-out pieces from their first bar (untransposed), per style and overall."""
    import torch

    sums, counts = Counter(), Counter()
    with torch.no_grad():
        for piece in held:
            ids, positions, mask, labels = batch_tensors([window(vocab, piece, 0, max_tokens)], vocab.pad)
            logits = model(input_ids=ids, position_ids=positions, attention_mask=mask).logits[0, :-1]
            target = labels[0, 1:]
            keep = target >= 0
            nll = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
            sums[piece["style"]] += float(nll)
            counts[piece["style"]] += int(keep.sum())
    per_style = {s: {"loss": round(sums[s] / counts[s], 4), "perplexity": round(math.exp(sums[s] / counts[s]), 3),
                     "tokens": counts[s]} for s in sorted(counts)}
    total = sum(sums.values()) / sum(counts.values())
    return {"loss": round(total, 4), "perplexity": round(math.exp(total), 3), "per_style": per_style,
            "pieces": len(held)}


def check_bar_positions(model: Any, path: Path, piece: dict[str, Any], vocab: Any) -> float:
    """The exported graph against PyTorch on a held-out window numbered by ``BarClock`` (causal_lm's own check
    numbers tokens by index only)."""
    import torch
    from maas_modelbuild import causal_lm

    ids, positions = window(vocab, piece, 0, 64)
    sess = causal_lm.session(path)
    feeds = {**causal_lm._feeds(sess, ids, None, 0, causal_lm.kv_layout(model)), "position_ids": positions[None]}
    got = sess.run(["logits"], feeds)[0]
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(feeds["input_ids"]), position_ids=torch.from_numpy(positions[None]),
                    attention_mask=torch.from_numpy(feeds["attention_mask"])).logits.numpy()
    diff = float(np.abs(got - ref).max())
    if not diff < 1e-2:
        raise RuntimeError(f"ONNX export disagrees with PyTorch on bar-numbered positions: logits {diff:.3g}")
    return round(diff, 6)


# ---------------------------------------------------------------------------------------------- evaluation
def reference_stats(pieces: list[dict[str, Any]], vocab: Any, bars: int, n: int) -> dict[str, dict[str, float]]:
    """The statistics of each style's ``twins`` among ``pieces`` over their first ``bars`` bars."""
    from music_generator.stats import mean_stats, piece_stats
    from music_generator.vocab import STYLES

    out = {}
    for style in STYLES:
        rows = []
        for piece in twins(pieces, style, bars, n):
            end = piece["bars"][bars] if len(piece["bars"]) > bars else len(piece["ids"])
            rows.append(piece_stats(vocab.decode(piece["ids"][:end], piece["ts"]), bars))
        out[style] = mean_stats(rows)
    return out


def twins(pieces: list[dict[str, Any]], style: str, bars: int, n: int) -> list[dict[str, Any]]:
    """The first ``n`` pieces of a style with at least ``bars`` bars (repeated in turn when there are fewer):
    each generated piece is asked for the key, meter and tempo of one of them, so that both sides of a comparison
    share conditions."""
    group = [p for p in pieces if p["style"] == style and len(p["bars"]) >= bars]
    return [group[i % len(group)] for i in range(n)]


async def _generate_all(pipeline: Any, references: dict[str, list[dict[str, Any]]],
                        p: dict[str, Any]) -> dict[str, Any]:
    """Per style: pieces composed as the twins of each reference set's pieces; in-key share with the constraint
    off, and determinism, on the first set's."""
    from music_generator.pipeline import ComposeRequest
    from music_generator.stats import in_key_share, mean_stats, piece_stats
    from music_generator.vocab import STYLES

    e, s = p["eval"], pipeline.settings
    out: dict[str, Any] = {}
    for style in STYLES:
        out[style] = {"stats": {}, "served": [], "free": []}
        for k, (name, pieces) in enumerate(references.items()):
            requests = [ComposeRequest(style=style, key=str(h["source_key"]),
                                       tempo_bpm=min(max(h["tempo_bpm"], s.min_tempo_bpm), s.max_tempo_bpm),
                                       time_signature=f"{h['ts'][0]}/{h['ts'][1]}", bars=e["bars"],
                                       temperature=e["temperature"], top_p=e["top_p"], seed=1000 + i)
                        for i, h in enumerate(twins(pieces, style, e["bars"], e["pieces_per_style"]))]
            served = await asyncio.gather(*(pipeline.compose(r) for r in requests))
            out[style]["stats"][name] = mean_stats([piece_stats(c.notes, c.bars) for c in served])
            out[style]["served"] += served
            if k > 0:
                continue
            free = await asyncio.gather(*(pipeline.compose(ComposeRequest(**{**r.__dict__, "chromatic": True}))
                                          for r in requests))
            again = await pipeline.compose(requests[0])
            out[style].update(
                free=free, deterministic=again.midi == served[0].midi,
                in_key_served=float(np.mean([in_key_share(c.notes, c.plan.key) for c in served])),
                in_key_model_alone=float(np.mean([in_key_share(c.notes, c.plan.key) for c in free])),
                bars_delivered=float(np.mean([c.bars == e["bars"] for c in served])))
    return out


def midi_parses(midi: bytes) -> tuple[bool, bool]:
    import mido
    import pretty_midi

    ok_mido = ok_pm = True
    try:
        mido.MidiFile(file=io.BytesIO(midi))
    except Exception:  # noqa: BLE001
        ok_mido = False
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
        ok_pm = sum(len(i.notes) for i in pm.instruments) > 0
    except Exception:  # noqa: BLE001
        ok_pm = False
    return ok_mido, ok_pm


def evaluate_generation(out_dir: Path, manifest: dict[str, Any], train: list, held: list, vocab: Any,
                        p: dict[str, Any]) -> dict[str, Any]:
    from maas_modelbuild import causal_lm
    from maas_runtime.executor import BoundedExecutor
    from maas_runtime.onnx_model import OnnxModel
    from music_generator.pipeline import MusicPipeline
    from music_generator.settings import MusicGenSettings
    from music_generator.stats import STATS

    # every request of the evaluation is submitted at once: they queue (no admission by expected wait)
    settings = MusicGenSettings(model_repository=out_dir.parent, max_batch_size=32, max_queue_size=1024,
                                max_queue_wait_s=0)
    executor = BoundedExecutor(1)
    session = causal_lm.session(out_dir / "model.onnx")
    model = OnnxModel(NAME, 1, out_dir, manifest, session, executor)

    # the training style: 100 of its training pieces in a seeded order (as many as held-out pieces are compared)
    training = sorted(train, key=lambda x: x["id"])
    random.Random(p["seed"] + 2).shuffle(training)
    references = {"training_style": training, "heldout_pieces": held}

    async def run() -> dict[str, Any]:
        pipeline = MusicPipeline(model, settings)
        try:
            return await _generate_all(pipeline, references, p)
        finally:
            await pipeline.close()

    started = time.monotonic()
    results = asyncio.run(run())
    executor.shutdown()
    e = p["eval"]
    reference = {name: reference_stats(pieces, vocab, e["bars"], e["pieces_per_style"])
                 for name, pieces in references.items()}
    report: dict[str, Any] = {"pieces_per_style": e["pieces_per_style"], "bars": e["bars"],
                              "temperature": e["temperature"], "top_p": e["top_p"], "styles": {}}
    total = parsed_mido = parsed_pm = 0
    for style, r in results.items():
        for c in [*r["served"], *r["free"]]:
            a, b = midi_parses(c.midi)
            total, parsed_mido, parsed_pm = total + 1, parsed_mido + a, parsed_pm + b
        report["styles"][style] = {}
        for name in references:
            ref, got = reference[name].get(style, {}), r["stats"][name]
            rel = {k: round(abs(got[k] - ref[k]) / ref[k], 4) for k in STATS if ref.get(k)}
            report["styles"][style][f"vs_{name}"] = {
                "generated": {k: round(v, 3) for k, v in got.items()},
                "reference": {k: round(v, 3) for k, v in ref.items()},
                "relative_difference": rel,
                "within_10_percent": {k: v <= 0.10 for k, v in rel.items()},
            }
        report["styles"][style].update({
            "in_key_share_served": round(r["in_key_served"], 4),
            "in_key_share_model_alone": round(r["in_key_model_alone"], 4),
            "requested_bars_delivered": round(r["bars_delivered"], 3),
            "same_seed_same_midi": r["deterministic"],
        })
    report["midi_files"] = total
    report["parse_rate_mido"] = round(parsed_mido / total, 4)
    report["parse_rate_pretty_midi"] = round(parsed_pm / total, 4)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


# ---------------------------------------------------------------------------------------------- build
def style_table(pieces: list[dict[str, Any]]) -> dict[str, Any]:
    from music_generator.vocab import STYLES

    table = {}
    for style in STYLES:
        group = [p for p in pieces if p["style"] == style]
        keys = Counter(str(p["source_key"]) for p in group)  # what requests without a key draw from
        pitches = np.concatenate([np.asarray(p["pitches"]) for p in group])
        ts = Counter(p["ts"] for p in group).most_common(1)[0][0]
        table[style] = {
            **STYLE_DEFAULTS[style],
            "time_signature": list(ts),
            # in C major / A minor, where the model composes
            "pitch_range": [int(np.percentile(pitches, 0.5)), int(np.percentile(pitches, 99.5))],
            "keys": {k: round(n / len(group), 4) for k, n in keys.most_common()},
            "median_bars": int(np.median([len(p["bars"]) for p in group])),
            "pieces": len(group),
        }
    return table


def build(ctx: BuildContext) -> dict[str, Any]:

    from maas_modelbuild import causal_lm
    from music_generator.vocab import Vocabulary, make_tokenizer

    p = ctx.params
    random.seed(p["seed"])
    np.random.seed(p["seed"])
    tokenizer = make_tokenizer()
    tokenizer.save(ctx.out_dir / TOKENIZER_FILE)
    vocab = Vocabulary(make_tokenizer(str(ctx.out_dir / TOKENIZER_FILE)))
    records = music_corpus.load(ctx.dependency("music-corpus"))
    pieces = prepare(records, vocab)
    train, held = split(pieces, p["seed"], p["heldout_fraction"])
    log.info("music: %d pieces (%d train, %d held out), vocabulary %d", len(pieces), len(train), len(held),
             vocab.size)
    model, training = train_model(train, vocab, p)
    heldout = heldout_loss(model, held, vocab, p["window_tokens"])
    log.info("held-out loss %.3f (perplexity %.2f)", heldout["loss"], heldout["perplexity"])

    model.set_attn_implementation("eager")  # explicit masks export predictably (as causal_lm.load_model does)
    fields = causal_lm.export(model.eval(), ctx.out_dir / "model.onnx")
    fields["export_check"]["bar_positions_max_abs_logit_diff"] = check_bar_positions(
        model, ctx.out_dir / "model.onnx", held[0], vocab)
    manifest = {
        "task": "symbolic-music-generation",
        **fields,
        "context_length": p["model"]["n_positions"],
        "trained_window_tokens": p["window_tokens"],
        "position_ids": f"index + 1024 * (bar slot + {vocab.bar_slots} * voices) (music_generator.vocab.BarClock)",
        "tokenizer": TOKENIZER_FILE,
        "tokenization": "miditok REMI (merged voices, no velocities) + conditioning tokens (music_generator.vocab)",
        "styles": style_table(pieces),
        "training": {**training, "pieces": len(train), "train_tokens_per_epoch": sum(len(x["ids"]) for x in train)},
        "license": "weights trained here on the music21 corpus (BSD-3-Clause; the works are public domain)",
    }
    evaluation = {"heldout": heldout}
    evaluation["generation"] = evaluate_generation(ctx.out_dir, {**manifest, "name": NAME, "version": 1}, train,
                                                   held, vocab, p)
    log.info("generation: %s", {s: {k: v[k]["relative_difference"] for k in v if k.startswith("vs_")}
                                for s, v in evaluation["generation"]["styles"].items()})
    manifest["evaluation"] = evaluation
    return manifest


RECIPE = Recipe(
    name=NAME,
    version=1,
    build=build,
    description="GPT-2 (4x256) over REMI tokens with style/key/tempo/length conditioning, trained on music21",
    sources=("music21", "miditok", "torch", "transformers"),
    params={**PARAMS, "shared_code": _shared_code_digest()},
    depends=("music-corpus",),
    budget_s=840,
)
