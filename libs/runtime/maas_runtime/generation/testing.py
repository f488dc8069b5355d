"""A tiny decoder-only ONNX model with a KV cache, built in a few milliseconds, for tests of the engine and of
services that use it (no real weights needed).

It has the same inputs as an exported causal LM (``logits_to_keep`` included). The model's next token is a
known function of the whole (unpadded) history, so batching mistakes show: with history t_0 .. t_n at positions
p_0 .. p_n (by default 0 .. n), it predicts ``sum((t_i + 1) * (p_i + 1)) mod vocab`` and its logits fall off by
``1`` per step around the vocabulary from there (a real distribution to sample from). Both layers
of its cache carry the per-token terms and the prediction averages them, so a misplaced cache, a wrong
attention mask or wrong position ids change the output.

``appends=True`` builds it with the other cache contract (``present`` = the new positions only, the past may
carry masked spare columns), so the engine is tested with both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

HEADS, HEAD_DIM, LAYERS = 2, 4, 2


def tiny_next_token(history: Sequence[int], vocab: int = 32, number: Callable[[int], int] = lambda i: i) -> int:
    """The next token after ``history`` when token i has position id ``number(i)`` (by default i)."""
    return int(sum((t + 1) * (number(i) + 1) for i, t in enumerate(history)) % vocab)


def tiny_logits(history: Sequence[int], vocab: int = 32) -> np.ndarray:
    k = np.arange(vocab)
    return -((k - tiny_next_token(history, vocab)) % vocab).astype(np.float32)


def tiny_greedy(prompt: Sequence[int], n: int, vocab: int = 32,
                number: Callable[[int], int] = lambda i: i) -> list[int]:
    seq, out = list(prompt), []
    for _ in range(n):
        out.append(tiny_next_token(seq, vocab, number))
        seq.append(out[-1])
    return out


def build_tiny_decoder(vocab: int = 32, appends: bool = False):  # -> onnx.ModelProto
    import onnx
    from onnx import TensorProto, helper

    def const(name: str, values, dtype=TensorProto.INT64, dims=None):  # noqa: ANN001
        arr = np.asarray(values)
        return helper.make_tensor(name, dtype, dims if dims is not None else list(arr.shape), arr.flatten().tolist())

    kv = ["batch", HEADS, "past", HEAD_DIM]
    kv_out = ["batch", HEADS, "seq" if appends else "total", HEAD_DIM]
    past = [f"past_key_values.{i}.{k}" for i in range(LAYERS) for k in ("key", "value")]
    # the whole cache of this step (past + new); the outputs are these, or the new positions only
    present = [f"present.{i}.{k}" if not appends else f"cache.{i}.{k}" for i in range(LAYERS) for k in ("key", "value")]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]),
              *(helper.make_tensor_value_info(n, TensorProto.FLOAT, kv) for n in past),
              helper.make_tensor_value_info("logits_to_keep", TensorProto.INT64, [])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "kept", vocab]),
               *(helper.make_tensor_value_info(f"present.{i}.{k}", TensorProto.FLOAT, kv_out)
                 for i in range(LAYERS) for k in ("key", "value"))]
    inits = [const("one", 1), const("zero", 0), const("vocab", vocab), const("ax13", [1, 3]),
             const("ax0", [0]), const("ax1", [1]), const("axm1", [-1]),
             const("expand", [1, HEADS, 1, HEAD_DIM]), const("ivocab", vocab),
             const("half", 0.5, TensorProto.FLOAT, []), const("neg", -1.0, TensorProto.FLOAT, []),
             const("far", [2**62])]
    n = helper.make_node
    nodes = [
        # per-token term (t + 1) * (pos + 1), broadcast into every head and channel of the new cache columns
        n("Add", ["input_ids", "one"], ["t1"]), n("Add", ["position_ids", "one"], ["p1"]),
        n("Mul", ["t1", "p1"], ["term_i"]), n("Cast", ["term_i"], ["term"], to=TensorProto.FLOAT),
        n("Unsqueeze", ["term", "ax13"], ["term4"]), n("Expand", ["term4", "expand"], ["new_kv"]),
        *(n("Concat", [p, "new_kv"], [q], axis=2) for p, q in zip(past, present)),
        # causal mask: key column t is visible to query s when t <= (T - S) + s
        n("Shape", ["attention_mask"], ["mshape"]), n("Gather", ["mshape", "one"], ["T"], axis=0),
        n("Shape", ["input_ids"], ["ishape"]), n("Gather", ["ishape", "one"], ["S"], axis=0),
        n("Sub", ["T", "S"], ["P"]), n("Range", ["zero", "T", "one"], ["cols"]),
        n("Range", ["P", "T", "one"], ["rows"]),
        n("Unsqueeze", ["cols", "ax0"], ["cols2"]), n("Unsqueeze", ["rows", "ax1"], ["rows2"]),
        n("LessOrEqual", ["cols2", "rows2"], ["causal_b"]), n("Cast", ["causal_b"], ["causal"], to=TensorProto.FLOAT),
        n("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT), n("Unsqueeze", ["maskf", "ax1"], ["mask3"]),
        n("Mul", ["causal", "mask3"], ["weights"]),  # [B, S, T]
        # the terms from layer 0's values and layer 1's keys, averaged
        n("Gather", [present[1], "zero"], ["v0h"], axis=1), n("Gather", ["v0h", "zero"], ["v0"], axis=2),
        n("Gather", [present[2], "zero"], ["k1h"], axis=1), n("Gather", ["k1h", "zero"], ["k1"], axis=2),
        n("Add", ["v0", "k1"], ["vsum"]), n("Mul", ["vsum", "half"], ["vals"]),
        n("Unsqueeze", ["vals", "axm1"], ["vals3"]), n("MatMul", ["weights", "vals3"], ["total"]),  # [B, S, 1]
        n("Cast", ["total"], ["total_i"], to=TensorProto.INT64), n("Mod", ["total_i", "ivocab"], ["nxt"]),
        n("Range", ["zero", "vocab", "one"], ["ks"]), n("Sub", ["ks", "nxt"], ["d0"]),
        n("Add", ["d0", "ivocab"], ["d1"]), n("Mod", ["d1", "ivocab"], ["d"]),
        n("Cast", ["d"], ["df"], to=TensorProto.FLOAT), n("Mul", ["df", "neg"], ["all_logits"]),
        # logits_to_keep = k: the last k positions only (0: all)
        n("Unsqueeze", ["logits_to_keep", "ax0"], ["keep1"]), n("Neg", ["keep1"], ["kstart"]),
        n("Slice", ["all_logits", "kstart", "far", "ax1"], ["logits"]),
    ]
    if appends:
        nodes += [n("Identity", ["new_kv"], [f"present.{i}.{k}"]) for i in range(LAYERS) for k in ("key", "value")]
    graph = helper.make_graph(nodes, "tiny-decoder", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_tiny_decoder(repository: Path, name: str = "tiny-decoder", vocab: int = 32,
                       context_length: int = 64, appends: bool = False) -> Path:
    """``repository/name/1/model.onnx`` + manifest (the KV-cache contract); returns the version folder."""
    import onnx

    folder = Path(repository) / name / "1"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_tiny_decoder(vocab, appends), str(folder / "model.onnx"))
    kv = [-1, HEADS, -1, HEAD_DIM]
    past = [f"past_key_values.{i}.{k}" for i in range(LAYERS) for k in ("key", "value")]
    manifest = {
        "name": name, "version": 1, "recipe_key": "tiny", "task": "text-generation",
        "inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
                   {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]},
                   {"name": "position_ids", "datatype": "INT64", "shape": [-1, -1]},
                   *({"name": p, "datatype": "FP32", "shape": kv} for p in past),
                   {"name": "logits_to_keep", "datatype": "INT64", "shape": []}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, -1, vocab]},
                    *({"name": p.replace("past_key_values", "present"), "datatype": "FP32", "shape": kv}
                      for p in past)],
        "kv_cache": {"layers": LAYERS, "heads": HEADS, "head_dim": HEAD_DIM,
                     "present_positions": "new" if appends else "all"},
        "vocab_size": vocab, "context_length": context_length,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder
