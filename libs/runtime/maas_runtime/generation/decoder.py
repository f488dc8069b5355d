"""A decoder-only ONNX model with a KV cache, and the left-padded batch of caches that decoding steps share.

The graph contract (what ``maas_modelbuild.causal_lm`` exports, and ONNX Runtime GenAI / Optimum use)::

    input_ids [batch, sequence]            attention_mask [batch, past + sequence] (0: padding)
    position_ids [batch, sequence]         past_key_values.<i>.key / .value [batch, heads, past, head_dim]
    -> logits [batch, sequence, vocab]     present.<i>.key / .value [batch, heads, past + sequence, head_dim]

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


@dataclass
class KVCache:
    """The caches of ``B`` sequences, left-padded to a common width ``T``: row i's real tokens are its last
    ``lengths[i]`` columns; the columns before them are masked out (their content is never read)."""

    past: list[np.ndarray]
    lengths: np.ndarray  # int64 [B]

    @property
    def batch(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def width(self) -> int:
        return int(self.past[0].shape[2])

    @classmethod
    def empty(cls, model: DecoderModel, batch: int) -> "KVCache":
        return cls(model.empty_past(batch), np.zeros(batch, dtype=np.int64))

    def attention_mask(self, new_tokens: int) -> np.ndarray:
        """Mask for a step that appends ``new_tokens`` columns to every row: [B, T + new_tokens]."""
        cols = np.arange(self.width)
        mask = (cols[None, :] >= (self.width - self.lengths)[:, None]).astype(np.int64)
        return np.concatenate([mask, np.ones((self.batch, new_tokens), dtype=np.int64)], axis=1)

    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.past)

    @staticmethod
    def gather(parts: Sequence[tuple["KVCache", Sequence[int]]]) -> "KVCache":
        """Rows ``rows`` of each cache, in order, into one cache as narrow as its longest row."""
        lengths = np.concatenate([c.lengths[list(rows)] for c, rows in parts]).astype(np.int64)
        width = int(lengths.max()) if lengths.size else 0
        first = parts[0][0].past
        out = [np.zeros((lengths.shape[0], p.shape[1], width, p.shape[3]), dtype=p.dtype) for p in first]
        start = 0
        for cache, rows in parts:
            rows = list(rows)
            take = min(width, cache.width)
            if rows and take:
                whole = rows == list(range(cache.batch))
                for dst, src in zip(out, cache.past):
                    block = src[:, :, cache.width - take:, :] if whole else src[rows][:, :, cache.width - take:, :]
                    dst[start:start + len(rows), :, width - take:, :] = block
            start += len(rows)
        return KVCache(out, lengths)
