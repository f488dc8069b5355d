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

from maas_runtime.generation.device import HOST, Buffer, CacheStore, DeviceStore
from maas_runtime.onnx_model import ModelLoadError, OnnxModel

_FIXED = ("input_ids", "attention_mask", "position_ids", "logits_to_keep")


def present_name(past: str) -> str:
    """past_key_values.3.key -> present.3.key (also past.3.key, past_key.3 -> present_key.3)."""
    if past.startswith("past_key_values."):
        return "present." + past[len("past_key_values."):]
    return re.sub(r"^past", "present", past)


class DecoderModel:
    """The ONNX decoder and what the engine needs to know about it (cache layout, vocabulary, context)."""

    def __init__(self, model: OnnxModel, io_binding: bool = False) -> None:
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
        # IO binding: the cache lives on the session's device between steps (see generation.device)
        self.io_binding = io_binding
        self.store: CacheStore = DeviceStore(model.session, len(self.past_names), self.kv_dtype) if io_binding \
            else HOST

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def can_batch(self) -> bool:
        return self.has_attention_mask and self.has_position_ids

    def bytes_per_token(self) -> int:
        """Cache memory one token of one sequence takes."""
        return len(self.past_names) * self.heads * self.head_dim * self.kv_dtype.itemsize

    def empty_past(self, batch: int) -> list[Buffer]:
        return [self.store.zeros((batch, self.heads, 0, self.head_dim), self.kv_dtype) for _ in self.past_names]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray,
                past: Sequence[Buffer], last_only: bool = False) -> tuple[np.ndarray, list[Buffer]]:
        """One run (call it on the executor): logits [B, S, V] ([B, 1, V] when ``last_only`` and the graph can)
        on the host, and the grown cache in this model's store (numpy, or OrtValues on the device)."""
        feeds = {"input_ids": input_ids}
        if self.has_logits_to_keep:
            feeds["logits_to_keep"] = np.array(1 if last_only else 0, dtype=np.int64)
        if self.has_attention_mask:
            feeds["attention_mask"] = attention_mask
        if self.has_position_ids:
            feeds["position_ids"] = position_ids
        if not self.io_binding:
            feeds.update(zip(self.past_names, past))
            out = self.model.run(feeds, self.output_names)
            return out["logits"], [out[n] for n in self.present_names]
        store = self.store
        assert isinstance(store, DeviceStore)
        binding = self.model.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name, buf in zip(self.past_names, past):
            binding.bind_ortvalue_input(name, buf)
        binding.bind_output("logits", "cpu")  # only the logits come back: the cache stays where it is
        for name in self.present_names:
            binding.bind_output(name, store.device, store.device_id)
        self.model.run_bound(binding, batch=int(input_ids.shape[0]))
        values = binding.get_outputs()
        return values[0].numpy(), list(values[1:])


SPARE_COLUMNS = 32  # free columns a cache buffer is given when it grows (for models that append)


@dataclass
class KVCache:
    """The caches of ``B`` sequences in buffers ``[B, heads, capacity, head_dim]``, left-padded to a common
    ``width``: row i's real tokens are columns ``[width - lengths[i], width)``; the columns before them are
    masked padding and the columns from ``width`` on are spare (masked too). Neither is ever read. The buffers
    are the ``store``'s: numpy arrays, or OrtValues on the model's device."""

    past: list[Buffer]
    lengths: np.ndarray  # int64 [B]
    width: int = -1  # columns in use; -1: all of them
    store: CacheStore = HOST

    def __post_init__(self) -> None:
        if self.width < 0:
            self.width = self.capacity

    @property
    def batch(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def capacity(self) -> int:
        return self.store.columns(self.past[0])

    @classmethod
    def empty(cls, model: DecoderModel, batch: int) -> "KVCache":
        return cls(model.empty_past(batch), np.zeros(batch, dtype=np.int64), store=model.store)

    def attention_mask(self, new_tokens: int) -> np.ndarray:
        """Mask for a step that adds ``new_tokens`` positions to every row: [B, capacity + new_tokens]."""
        cols = np.arange(self.capacity)
        mask = ((cols[None, :] >= (self.width - self.lengths)[:, None]) & (cols[None, :] < self.width))
        return np.concatenate([mask.astype(np.int64), np.ones((self.batch, new_tokens), dtype=np.int64)], axis=1)

    def advanced(self, present: list[Buffer], appends: bool) -> "KVCache":
        """The cache after a step that added ``n`` positions to every row: ``present`` written into the buffer's
        spare columns (grown when full) when the model returns new positions only, else ``present`` itself."""
        store = self.store
        if not appends:
            return KVCache(present, self.lengths + (store.columns(present[0]) - self.width), store=store)
        n = store.columns(present[0])
        past = self.past
        if self.width + n > self.capacity:
            past = store.take(past, None, 0, self.width, right=n + SPARE_COLUMNS)
        past = store.write(past, present, self.width)
        return KVCache(past, self.lengths + n, self.width + n, store)

    def columns(self, start: int, end: int) -> "KVCache":
        """A copy of columns ``[start, end)`` of every row, exactly as wide (a shared prefix kept for reuse)."""
        return KVCache(self.store.take(self.past, None, start, end), self.lengths.copy(), store=self.store)

    def nbytes(self) -> int:
        return sum(self.store.nbytes(p) for p in self.past)

    @staticmethod
    def gather(parts: Sequence[tuple["KVCache", Sequence[int]]], spare: int = 0) -> "KVCache":
        """Rows ``rows`` of each cache, in order, into one cache as narrow as its longest row (plus ``spare``
        free columns)."""
        lengths = np.concatenate([c.lengths[list(rows)] for c, rows in parts]).astype(np.int64)
        width = int(lengths.max()) if lengths.size else 0
        store = parts[0][0].store
        blocks = []
        for cache, rows in parts:
            rows = list(rows)
            take = min(width, cache.width)
            whole = rows == list(range(cache.batch))
            blocks.append((cache.past, None if whole else rows, cache.width - take, cache.width))
        return KVCache(store.gather(blocks, width, spare), lengths, width, store)
