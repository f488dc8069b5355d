"""A decoder-only ONNX model with a KV cache, and the left-padded batch of caches that decoding steps share.

The graph contract (what ``maas_modelbuild.causal_lm`` exports, and ONNX Runtime GenAI / Optimum use)::

    input_ids [batch, sequence]            attention_mask [batch, past + sequence] (0: padding)
    position_ids [batch, sequence]         past_key_values.<i>.key / .value [batch, heads, past, head_dim]
    -> logits [batch, sequence, vocab]     present.<i>.key / .value [batch, heads, past + sequence, head_dim]

or, when the manifest says ``kv_cache.present_positions = "new"`` (what ``maas_modelbuild.causal_lm`` exports for
Llama-family models), ``present`` holds the new positions only, ``[batch, heads, sequence, head_dim]``, and the
past may have masked columns anywhere. Then the cache is a buffer with spare columns that the new positions are
written into: a decoding step copies nothing (the graph attends over the cache and the new positions in two
parts instead of concatenating them). Otherwise the cache is whatever the graph returned.

``position_ids`` and ``attention_mask`` may be absent from a graph (then it cannot batch rows of different
lengths: the engine runs it one sequence at a time). An optional scalar input ``logits_to_keep`` (k) makes the
output head run on the last k positions only (0: all): generation asks for 1, scoring for all. Nothing here knows about text: token ids in, logits out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from maas_runtime.onnx_model import ModelLoadError, OnnxModel

_FIXED = ("input_ids", "attention_mask", "position_ids", "logits_to_keep")


def present_name(past: str) -> str:
    """past_key_values.3.key -> present.3.key (also past.3.key, past_key.3 -> present_key.3)."""
    if past.startswith("past_key_values."):
        return "present." + past[len("past_key_values."):]
    return re.sub(r"^past", "present", past)


class DecoderModel:
    """The ONNX decoder and what the engine needs to know about it (cache layout, vocabulary, context)."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        manifest = model.manifest
        inputs = {s.name: s for s in model.inputs}
        outputs = {s.name: s for s in model.outputs}
        if "input_ids" not in inputs or "logits" not in outputs:
            raise ModelLoadError(f"model {model.name}: a decoder needs input_ids and logits, it has "
                                 f"{sorted(inputs)} -> {sorted(outputs)}")
        self.past_names = [s.name for s in model.inputs if s.name not in _FIXED]
        self.present_names = [present_name(n) for n in self.past_names]
        missing = [n for n in self.present_names if n not in outputs]
        if not self.past_names or missing:
            raise ModelLoadError(f"model {model.name}: no KV cache (past inputs {self.past_names}, "
                                 f"missing present outputs {missing})")
        self.has_attention_mask = "attention_mask" in inputs
        self.has_position_ids = "position_ids" in inputs
        self.has_logits_to_keep = "logits_to_keep" in inputs
        spec = inputs[self.past_names[0]]
        kv = manifest.get("kv_cache", {})
        self.heads = spec.shape[1] if spec.shape[1] > 0 else int(kv["heads"])
        self.head_dim = spec.shape[3] if spec.shape[3] > 0 else int(kv["head_dim"])
        self.kv_dtype = spec.dtype
        vocab = outputs["logits"].shape[-1]
        self.vocab_size = vocab if vocab > 0 else int(manifest["vocab_size"])
        self.context_length = int(manifest.get("context_length") or 2048)
        self.appends = kv.get("present_positions", "all") == "new"  # present = the new positions only
        self.output_names = ["logits", *self.present_names]

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def can_batch(self) -> bool:
        return self.has_attention_mask and self.has_position_ids

    def bytes_per_token(self) -> int:
        """Cache memory one token of one sequence takes."""
        return len(self.past_names) * self.heads * self.head_dim * self.kv_dtype.itemsize

    def empty_past(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, self.heads, 0, self.head_dim), dtype=self.kv_dtype) for _ in self.past_names]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray,
                past: Sequence[np.ndarray], last_only: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """One run (call it on the executor): logits [B, S, V] ([B, 1, V] when ``last_only`` and the graph can)
        and the grown cache."""
        feeds = {"input_ids": input_ids}
        if self.has_logits_to_keep:
            feeds["logits_to_keep"] = np.array(1 if last_only else 0, dtype=np.int64)
        if self.has_attention_mask:
            feeds["attention_mask"] = attention_mask
        if self.has_position_ids:
            feeds["position_ids"] = position_ids
        feeds.update(zip(self.past_names, past))
        out = self.model.run(feeds, self.output_names)
        return out["logits"], [out[n] for n in self.present_names]


SPARE_COLUMNS = 32  # free columns a cache buffer is given when it grows (for models that append)


@dataclass
class KVCache:
    """The caches of ``B`` sequences in buffers ``[B, heads, capacity, head_dim]``, left-padded to a common
    ``width``: row i's real tokens are columns ``[width - lengths[i], width)``; the columns before them are
    masked padding and the columns from ``width`` on are spare (masked too). Neither is ever read."""

    past: list[np.ndarray]
    lengths: np.ndarray  # int64 [B]
    width: int = -1  # columns in use; -1: all of them

    def __post_init__(self) -> None:
        if self.width < 0:
            self.width = self.capacity

    @property
    def batch(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def capacity(self) -> int:
        return int(self.past[0].shape[2])

    @classmethod
    def empty(cls, model: DecoderModel, batch: int) -> "KVCache":
        return cls(model.empty_past(batch), np.zeros(batch, dtype=np.int64))

    def attention_mask(self, new_tokens: int) -> np.ndarray:
        """Mask for a step that adds ``new_tokens`` positions to every row: [B, capacity + new_tokens]."""
        cols = np.arange(self.capacity)
        mask = ((cols[None, :] >= (self.width - self.lengths)[:, None]) & (cols[None, :] < self.width))
        return np.concatenate([mask.astype(np.int64), np.ones((self.batch, new_tokens), dtype=np.int64)], axis=1)

    def advanced(self, present: list[np.ndarray], appends: bool) -> "KVCache":
        """The cache after a step that added ``n`` positions to every row: ``present`` written into the buffer's
        spare columns (grown when full) when the model returns new positions only, else ``present`` itself."""
        if not appends:
            return KVCache(present, self.lengths + (int(present[0].shape[2]) - self.width))
        n = int(present[0].shape[2])
        past = self.past
        if self.width + n > self.capacity:
            past = [np.zeros((p.shape[0], p.shape[1], self.width + n + SPARE_COLUMNS, p.shape[3]), dtype=p.dtype)
                    for p in self.past]
            for dst, src in zip(past, self.past):
                dst[:, :, :self.width] = src[:, :, :self.width]
        for dst, new in zip(past, present):
            dst[:, :, self.width:self.width + n] = new
        return KVCache(past, self.lengths + n, self.width + n)

    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.past)

    @staticmethod
    def gather(parts: Sequence[tuple["KVCache", Sequence[int]]], spare: int = 0) -> "KVCache":
        """Rows ``rows`` of each cache, in order, into one cache as narrow as its longest row (plus ``spare``
        free columns)."""
        lengths = np.concatenate([c.lengths[list(rows)] for c, rows in parts]).astype(np.int64)
        width = int(lengths.max()) if lengths.size else 0
        first = parts[0][0].past
        out = [np.zeros((lengths.shape[0], p.shape[1], width + spare, p.shape[3]), dtype=p.dtype) for p in first]
        start = 0
        for cache, rows in parts:
            rows = list(rows)
            take = min(width, cache.width)
            if rows and take:
                whole = rows == list(range(cache.batch))
                for dst, src in zip(out, cache.past):
                    cols = slice(cache.width - take, cache.width)
                    block = src[:, :, cols, :] if whole else src[rows][:, :, cols, :]
                    dst[start:start + len(rows), :, width - take:width, :] = block
            start += len(rows)
        return KVCache(out, lengths, width)
