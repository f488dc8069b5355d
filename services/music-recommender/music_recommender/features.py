"""Content vectors: the text embedding of a track's profile (the text-encoder model, i.e. what EmbedText
returns) followed by a few symbolic features, scaled down so they only separate tracks whose texts agree.
Queries have no symbolic part: they are padded with zeros (``pad``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from music_recommender.catalog import CatalogTrack

SYMBOLIC = ("duple", "triple", "compound", "parts", "polyphonic", "range", "length", "key_fifths")
SYMBOLIC_SCALE = 0.25


def symbolic(t: CatalogTrack) -> np.ndarray:
    top = t.time_signature.split("/")[0] if t.time_signature else ""
    fifths = 0.0
    from music_recommender.catalog import _KEYS  # noqa: PLC0415 - the key name back to its signature

    for f, names in _KEYS.items():
        if t.key == " / ".join(names):
            fifths = f / 7.0
    v = np.array([top in ("2", "4", "8"), top in ("3", "9"), top in ("6", "9", "12"),
                  min(t.part_count, 8) / 8.0, t.part_count > 1, min(t.ambitus_semitones, 48) / 48.0,
                  min(math.log1p(t.note_count) / 10.0, 1.0), fifths], dtype=np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def content_vectors(text: np.ndarray, sym: Sequence[np.ndarray] | None) -> np.ndarray:
    text = np.asarray(text, np.float32)
    s = np.stack(sym).astype(np.float32) if sym is not None else np.zeros((len(text), len(SYMBOLIC)), np.float32)
    return np.ascontiguousarray(np.concatenate([text, SYMBOLIC_SCALE * s], axis=1), np.float32)


def pad(vectors: np.ndarray, width: int) -> np.ndarray:
    v = np.asarray(vectors, np.float32)
    if v.ndim == 1:
        v = v[None, :]
    out = np.zeros((v.shape[0], width), np.float32)
    out[:, :min(width, v.shape[1])] = v[:, :width]
    return out


class TextEncoder:
    """The text-encoder ONNX model in-process (build time): the same tokenizer and graph nlp-analysis serves."""

    def __init__(self, directory: Path, threads: int = 2) -> None:
        import json

        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = json.loads((directory / "manifest.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(directory / manifest.get("tokenizer", "tokenizer.json")))
        self.tokenizer.enable_truncation(int(manifest.get("max_length", 256)))
        self.tokenizer.enable_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(directory / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        out = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
        for i in range(0, len(order), batch):
            chunk = [texts[j] for j in order[i:i + batch]]
            enc = self.tokenizer.encode_batch(chunk)
            out.append(self.session.run(None, {
                "input_ids": np.array([e.ids for e in enc], np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], np.int64)})[0])
        vecs = np.concatenate(out) if out else np.zeros((0, 384), np.float32)
        result = np.empty_like(vecs)
        result[order] = vecs
        return result

    def embed_unique(self, texts: Sequence[str]) -> np.ndarray:
        uniq = sorted(set(texts))
        vecs = self.embed(uniq)
        index = {t: i for i, t in enumerate(uniq)}
        return vecs[[index[t] for t in texts]]
