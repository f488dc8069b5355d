"""Export a Hugging Face causal language model to ONNX with a KV cache, and quantise its weights.

Used by the SmolLM2 recipes and by ``python -m maas_modelbuild.export_causal_lm`` (any local Hugging Face
causal-LM folder: Llama, GPT-2, ...). The graph has the I/O contract that ``maas_runtime.generation``
serves (the one ONNX Runtime GenAI and Optimum use):

    inputs   input_ids [batch, sequence] int64
             attention_mask [batch, past + sequence] int64 (0: padding)
             position_ids [batch, sequence] int64
             past_key_values.<i>.key / .value [batch, kv_heads, past, head_dim] float32, for every layer i
             logits_to_keep [] int64: logits for the last k positions only; 0: every position
    outputs  logits [batch, sequence or k, vocab] float32
             present.<i>.key / .value [batch, kv_heads, past + sequence, head_dim] float32 ("all")
                                   or [batch, kv_heads, sequence, head_dim] float32 ("new", see below)

Llama-family models (SmolLM2 among them) are exported from a forward written here for export, on the Hugging
Face module's own weights, norms and rotary frequencies, with two changes to the graph (checked against the
Hugging Face forward like every export):

* **attention over the cache and over the new positions in two parts** (two score blocks, one softmax over both,
  two weighted sums): the graph never concatenates the cache with the new keys and values, and ``present``
  holds the new positions only (manifest ``kv_cache.present_positions = "new"``). The engine keeps each cache
  in a buffer with spare columns and writes the new ones into it, so a decoding step reads the cache once and
  copies nothing: on batched decoding the per-layer Concat of past and new was a third of a step's time here;
* **grouped queries** (``[batch, kv_heads, group * sequence, head_dim]``) instead of repeating each KV head
  for its group of query heads, which copied the whole cache again on every step.

The past may carry masked columns anywhere (the engine's spare columns sit after the used ones). Other
architectures go through the Hugging Face forward as it is (``present_positions = "all"``).

Export is torch.onnx's dynamo exporter (its graph needs ~4x fewer shape nodes than the TorchScript
exporter's, which is ~25% faster per decoding step here). ``logits_to_keep`` is added to the exported graph: the
output head then runs on the last position only when generating (a fifth of a prefill's work for SmolLM2, and
a [batch, 1, vocab] output instead of [batch, sequence, vocab]); scoring asks for every position. Every export is checked against PyTorch on a
left-padded batch with a cache before it is accepted: continuous batching relies on exactly that case.

Quantisation is weight-only, ONNX Runtime's ``MatMulNBits`` (block-wise, asymmetric, one scale and zero
point per block of ``block_size`` input channels), accuracy level 4 (int8 activations: the VNNI/AMX path).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("maas.modelbuild.causal_lm")

OPSET = 18
PAST = "past_key_values.{layer}.{kind}"
PRESENT = "present.{layer}.{kind}"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                   "generation_config.json")


@dataclass(frozen=True)
class KvLayout:
    layers: int
    heads: int
    head_dim: int
    present_positions: str = "all"  # "all": present = past + new; "new": the new positions only

    def past_names(self) -> list[str]:
        return [PAST.format(layer=i, kind=k) for i in range(self.layers) for k in ("key", "value")]

    def present_names(self) -> list[str]:
        return [PRESENT.format(layer=i, kind=k) for i in range(self.layers) for k in ("key", "value")]


def load_model(hf_dir: Path) -> Any:
    """A local Hugging Face causal LM in float32 with eager attention (explicit masks export predictably)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32, attn_implementation="eager",
                                                 local_files_only=True)
    return model.eval()


def kv_layout(model: Any) -> KvLayout:
    """Layers, KV heads and head size, read from a one-token forward pass (works whatever the config calls them)."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.zeros((1, 1), dtype=torch.long), use_cache=True)
    layers = out.past_key_values.layers
    _, heads, _, head_dim = layers[0].keys.shape
    return KvLayout(len(layers), int(heads), int(head_dim), "new" if split_attention(model) else "all")


def split_attention(model: Any) -> bool:
    """Whether ``model`` is exported through ``_SplitLlama`` (a Llama with static rotary frequencies)."""
    config = model.config
    rope = getattr(config, "rope_scaling", None) or {}
    inner = getattr(model, "model", None)
    return (getattr(config, "model_type", None) == "llama" and inner is not None
            and hasattr(inner, "rotary_emb") and hasattr(inner, "layers")
            and rope.get("rope_type", rope.get("type", "default")) in ("default", "linear", "llama3"))


class _SplitLlama:
    """torch.nn.Module factory: a Llama forward for export with attention in two parts (see the module doc)."""

    @staticmethod
    def build(model: Any, layout: KvLayout) -> Any:
        import torch
        import torch.nn.functional as F

        config = model.config
        heads, kv_heads, head_dim = config.num_attention_heads, layout.heads, layout.head_dim
        group = heads // kv_heads

        def rms_norm(norm: Any, x: Any) -> Any:
            # x / sqrt(mean(x^2) + eps) * w: the pattern ONNX Runtime fuses into SimplifiedLayerNormalization
            return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon) * norm.weight

        def rotate_half(x: Any) -> Any:
            half = x.shape[-1] // 2
            return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, position_ids, past):  # noqa: ANN001
                inner = self.model.model
                batch, seq = input_ids.shape
                width = past[0].shape[2]
                x = inner.embed_tokens(input_ids)
                rotary = inner.rotary_emb
                freqs = position_ids[..., None].float() * rotary.inv_freq[None, None, :]
                emb = torch.cat((freqs, freqs), dim=-1)
                cos = (emb.cos() * rotary.attention_scaling)[:, None]  # [B, 1, S, D]
                sin = (emb.sin() * rotary.attention_scaling)[:, None]
                keep = attention_mask.bool()
                low = torch.finfo(torch.float32).min
                past_bias = torch.where(keep[:, :width], 0.0, low)[:, None, None, :]  # [B, 1, 1, P]
                causal = torch.ones((seq, seq), dtype=torch.bool).tril()
                new_keep = causal[None] & keep[:, width:][:, None, :]  # [B, S(query), S(key)]
                new_bias = torch.where(new_keep, 0.0, low)[:, None, None]  # [B, 1, 1, S, S]
                present = []
                for i, layer in enumerate(inner.layers):
                    attn = layer.self_attn
                    h = rms_norm(layer.input_layernorm, x)
                    q = attn.q_proj(h).view(batch, seq, heads, head_dim).transpose(1, 2)
                    k = attn.k_proj(h).view(batch, seq, kv_heads, head_dim).transpose(1, 2)
                    v = attn.v_proj(h).view(batch, seq, kv_heads, head_dim).transpose(1, 2)
                    q = q * cos + rotate_half(q) * sin
                    k = k * cos + rotate_half(k) * sin
                    present += [k, v]
                    # query heads grouped under their KV head: [B, kv_heads, group * S, D]
                    qg = q.reshape(batch, kv_heads, group * seq, head_dim)
                    past_k, past_v = past[2 * i], past[2 * i + 1]
                    s_past = torch.matmul(qg, past_k.transpose(2, 3)) * attn.scaling + past_bias
                    s_new = (torch.matmul(qg, k.transpose(2, 3)) * attn.scaling).view(batch, kv_heads, group, seq, seq)
                    s_new = (s_new + new_bias).view(batch, kv_heads, group * seq, seq)
                    probs = torch.softmax(torch.cat((s_past, s_new), dim=-1), dim=-1)
                    out = torch.matmul(probs[..., :width], past_v) + torch.matmul(probs[..., width:], v)
                    out = out.view(batch, heads, seq, head_dim).transpose(1, 2).reshape(batch, seq, heads * head_dim)
                    x = x + attn.o_proj(out)
                    h = rms_norm(layer.post_attention_layernorm, x)
                    mlp = layer.mlp
                    x = x + mlp.down_proj(F.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
                x = rms_norm(inner.norm, x)
                return (self.model.lm_head(x), *present)

        return Wrapper().eval()


class _FlatCache:
    """torch.nn.Module wrapper: flat past tensors in, (logits, *present) out."""

    @staticmethod
    def build(model: Any, layout: KvLayout) -> Any:
        import torch
        from transformers import DynamicCache

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, position_ids, past):  # noqa: ANN001
                cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(layout.layers)],
                                     config=self.model.config)
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 past_key_values=cache, use_cache=True)
                present = []
                for layer in out.past_key_values.layers:
                    present += [layer.keys, layer.values]
                return (out.logits, *present)

        return Wrapper().eval()


def padded_example(layout: KvLayout, vocab: int, batch: int = 2, seq: int = 5, past: int = 7,
                   seed: int = 0, spare: int = 0) -> dict[str, np.ndarray]:
    """A left-padded batch with a cache: row 1 has 3 padding columns, and the last ``spare`` past columns of
    every row are masked (the engine's unused buffer columns). Sizes avoid the model's own dimensions."""
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, past + seq), dtype=np.int64)
    mask[1, :3] = 0
    mask[:, past - spare:past] = 0
    feeds = {
        "input_ids": rng.integers(0, vocab, (batch, seq), dtype=np.int64),
        "attention_mask": mask,
        "position_ids": np.maximum(mask.cumsum(-1) - 1, 0)[:, past:],
    }
    for name in layout.past_names():
        feeds[name] = (rng.standard_normal((batch, layout.heads, past, layout.head_dim)) * 0.5).astype(np.float32)
    return feeds


def torch_forward(wrapper: Any, feeds: dict[str, np.ndarray], layout: KvLayout) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        out = wrapper(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]),
                      torch.from_numpy(feeds["position_ids"]),
                      [torch.from_numpy(feeds[n]) for n in layout.past_names()])
    return [t.numpy() for t in out]


def export(model: Any, path: Path) -> dict[str, Any]:
    """Export ``model`` to ``path`` (one file); returns manifest fields (I/O contract, KV layout, parity)."""
    import torch
    from torch.export import Dim

    layout = kv_layout(model)
    vocab = int(model.config.vocab_size)
    reference = _FlatCache.build(model, layout)
    wrapper = _SplitLlama.build(model, layout) if layout.present_positions == "new" else reference
    example = padded_example(layout, vocab)
    args = (torch.from_numpy(example["input_ids"]), torch.from_numpy(example["attention_mask"]),
            torch.from_numpy(example["position_ids"]), [torch.from_numpy(example[n]) for n in layout.past_names()])
    batch, seq, past = Dim("batch"), Dim("sequence"), Dim("past_sequence")
    dynamic = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: Dim.AUTO},
               "position_ids": {0: batch, 1: seq}, "past": [{0: batch, 2: past}] * (2 * layout.layers)}
    started = time.monotonic()
    with torch.no_grad():
        program = torch.onnx.export(wrapper, args, input_names=["input_ids", "attention_mask", "position_ids",
                                                                 *layout.past_names()],
                                    output_names=["logits", *layout.present_names()], dynamic_shapes=dynamic,
                                    opset_version=OPSET, dynamo=True, verbose=False)
    program.save(str(path))
    add_logits_to_keep(path)
    log.info("exported %s in %.0fs", path, time.monotonic() - started)
    check = check_against_torch(path, reference, layout, vocab)
    return {**io_contract(layout, vocab), "export_check": check}


def add_logits_to_keep(path: Path) -> None:
    """Input ``logits_to_keep`` (int64 scalar, k): the output head sees hidden[:, -k:] (k = 0: every position)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    head = producer["logits"]
    if head.op_type not in ("MatMul", "Gemm"):  # unexpected head: slice the logits themselves (same contract)
        head.output[0] = "logits_all"
        target, sliced = "logits_all", "logits"
    else:
        target, sliced = head.input[0], head.input[0] + "_kept"
        head.input[0] = sliced
    graph.input.append(helper.make_tensor_value_info("logits_to_keep", TensorProto.INT64, []))
    for out in graph.output:  # its second dimension is now k (or the sequence)
        if out.name == "logits":
            out.type.tensor_type.shape.dim[1].dim_param = "kept_positions"
    graph.initializer.extend([helper.make_tensor("ltk_axes", TensorProto.INT64, [1], [1]),
                              helper.make_tensor("ltk_zero", TensorProto.INT64, [1], [0]),
                              helper.make_tensor("ltk_end", TensorProto.INT64, [1], [2**62])])
    nodes = [helper.make_node("Unsqueeze", ["logits_to_keep", "ltk_zero"], ["ltk_k"], name="ltk_unsqueeze"),
             helper.make_node("Neg", ["ltk_k"], ["ltk_start"], name="ltk_neg"),
             helper.make_node("Slice", [target, "ltk_start", "ltk_end", "ltk_axes"], [sliced], name="ltk_slice")]
    index = next(i for i, n in enumerate(graph.node) if n is head)
    for offset, node in enumerate(nodes):
        graph.node.insert(index + offset + (1 if target == "logits_all" else 0), node)
    onnx.save_model(model, str(path))


def io_contract(layout: KvLayout, vocab: int) -> dict[str, Any]:
    kv = [-1, layout.heads, -1, layout.head_dim]
    return {
        "inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
                   {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]},
                   {"name": "position_ids", "datatype": "INT64", "shape": [-1, -1]},
                   *({"name": n, "datatype": "FP32", "shape": kv} for n in layout.past_names()),
                   {"name": "logits_to_keep", "datatype": "INT64", "shape": []}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, -1, vocab]},
                    *({"name": n, "datatype": "FP32", "shape": kv} for n in layout.present_names())],
        "kv_cache": {"layers": layout.layers, "heads": layout.heads, "head_dim": layout.head_dim,
                     "past": PAST, "present": PRESENT, "present_positions": layout.present_positions},
        "vocab_size": vocab,
    }


def session(path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def check_against_torch(path: Path, wrapper: Any, layout: KvLayout, vocab: int) -> dict[str, float]:
    """Logits and cache of the ONNX graph against PyTorch on a fresh left-padded batch with a cache, and on a
    prefill with an empty cache (sizes unlike the export example's)."""
    sess = session(path)
    worst: dict[str, float] = {}
    for name, kw in (("cached_padded_batch", dict(batch=3, seq=4, past=9, seed=1)),
                     ("empty_cache_prefill", dict(batch=2, seq=6, past=0, seed=2)),
                     ("spare_cache_columns", dict(batch=3, seq=1, past=11, seed=3, spare=4))):
        feeds = padded_example(layout, vocab, **kw)
        ref = torch_forward(wrapper, feeds, layout)
        got = sess.run(None, {**feeds, "logits_to_keep": np.array(0, dtype=np.int64)})
        last = sess.run(["logits"], {**feeds, "logits_to_keep": np.array(1, dtype=np.int64)})[0]
        if last.shape[1] != 1 or float(np.abs(last[:, 0] - got[0][:, -1]).max()) > 1e-4:
            raise RuntimeError(f"logits_to_keep=1 of {path.name} does not give the last position's logits")
        seq = feeds["input_ids"].shape[1]
        real = feeds["attention_mask"][:, -seq:].astype(bool)
        logit_diff = float(np.abs(got[0] - ref[0])[real].max())
        if layout.present_positions == "new":  # the new positions (the real ones) against torch's last columns
            pairs = [(g.transpose(0, 2, 1, 3)[real], r[:, :, -seq:].transpose(0, 2, 1, 3)[real])
                     for g, r in zip(got[1:], ref[1:])]
        else:
            pairs = list(zip(got[1:], ref[1:]))
        cache_diff = max(float(np.abs(g - r).max()) for g, r in pairs)
        if not (logit_diff < 1e-2 and cache_diff < 1e-2) or np.isnan(got[0]).any():
            raise RuntimeError(f"ONNX export of {path.name} disagrees with PyTorch ({name}): "
                               f"logits {logit_diff:.3g}, cache {cache_diff:.3g}")
        worst[f"{name}_max_abs_logit_diff"] = round(logit_diff, 6)
    return worst


# ---------------------------------------------------------------------------------------------- quantisation


def _constant_weight_matmuls(model: Any) -> None:
    """Expose every constant weight to the quantiser as ``MatMul(x, W)``:

    * ``MatMul(x, Transpose(W))`` with W an initializer (a tied output embedding) -> ``MatMul(x, W^T)``; the Gather
      on W (the input embedding) keeps the original;
    * ``Gemm(x, W, b)`` (GPT-2's Conv1D) -> ``MatMul(x, W) + b``.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def transposed(name: str) -> str:
        new = name + "_transposed"
        if new not in inits:
            inits[new] = numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(inits[name]).T), new)
            graph.initializer.append(inits[new])
        return new

    dropped: set[int] = set()
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "MatMul":
            src = producer.get(node.input[1])
            if (src is not None and src.op_type == "Transpose" and src.input[0] in inits
                    and numpy_helper.to_array(inits[src.input[0]]).ndim == 2
                    and list(next((a.ints for a in src.attribute if a.name == "perm"), [1, 0])) == [1, 0]):
                node.input[1] = transposed(src.input[0])
                dropped.add(id(src))
        elif (node.op_type == "Gemm" and node.input[1] in inits and not attrs.get("transA", 0)
              and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0):
            weight = transposed(node.input[1]) if attrs.get("transB", 0) else node.input[1]
            if len(node.input) > 2 and node.input[2]:
                product = node.output[0] + "_matmul"
                nodes.append(helper.make_node("MatMul", [node.input[0], weight], [product], name=node.name + "_MatMul"))
                nodes.append(helper.make_node("Add", [product, node.input[2]], list(node.output), name=node.name + "_Add"))
            else:
                nodes.append(helper.make_node("MatMul", [node.input[0], weight], list(node.output), name=node.name))
            continue
        nodes.append(node)
    used = {i for n in nodes if id(n) not in dropped for i in n.input}
    nodes = [n for n in nodes if id(n) not in dropped or any(o in used for o in n.output)]
    del graph.node[:]
    graph.node.extend(nodes)


def quantize(src: Path, dst: Path, bits: int = 8, block_size: int = 32, accuracy_level: int = 4) -> dict[str, Any]:
    """Weight-only quantisation of every MatMul with a constant weight (output head included)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    started = time.monotonic()
    model = onnx.load(str(src))
    _constant_weight_matmuls(model)
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=False, accuracy_level=accuracy_level,
                                          bits=bits)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    quantizer.process()
    out = quantizer.model.model
    count = sum(1 for n in out.graph.node if n.op_type == "MatMulNBits")
    onnx.save_model(out, str(dst))
    log.info("quantised %d MatMuls to %d bits in %.0fs", count, bits, time.monotonic() - started)
    return {"method": "onnxruntime MatMulNBits (weight-only, RTN)", "bits": bits, "block_size": block_size,
            "symmetric": False, "accuracy_level": accuracy_level, "quantized_matmuls": count}


# ---------------------------------------------------------------------------------------------- evaluation


def _feeds(sess: Any, ids: Sequence[int], past: list[np.ndarray] | None, start: int,
           layout: KvLayout, keep: int = 0) -> dict[str, np.ndarray]:
    feeds = {"input_ids": np.asarray([ids], dtype=np.int64),
             "logits_to_keep": np.array(keep, dtype=np.int64),
             "attention_mask": np.ones((1, start + len(ids)), dtype=np.int64),
             "position_ids": np.arange(start, start + len(ids), dtype=np.int64)[None]}
    if past is None:
        past = [np.zeros((1, layout.heads, 0, layout.head_dim), np.float32)] * (2 * layout.layers)
    feeds.update(zip(layout.past_names(), past))
    return feeds


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def _grown(layout: KvLayout, past: list[np.ndarray] | None, present: list[np.ndarray]) -> list[np.ndarray]:
    """The cache after a run: ``present`` itself, or past + present when the graph returns new positions only."""
    if layout.present_positions == "all" or past is None:
        return present
    return [np.concatenate([p, n], axis=2) for p, n in zip(past, present)]


def perplexity(sess: Any, ids: Sequence[int], layout: KvLayout, chunk: int = 256) -> tuple[float, int]:
    """exp(mean NLL) of ids[1:] given everything before (one pass, cached, in chunks)."""
    past, start, logprobs = None, 0, []
    for c in range(0, len(ids) - 1, chunk):
        piece = list(ids[c:c + chunk])
        out = sess.run(None, _feeds(sess, piece, past, start, layout))
        past, start = _grown(layout, past, out[1:]), start + len(piece)
        lp = _log_softmax(out[0][0])
        targets = ids[c + 1:c + 1 + len(piece)]
        logprobs += [float(lp[i, t]) for i, t in enumerate(targets)]
    return math.exp(-float(np.mean(logprobs))), len(logprobs)


def greedy(sess: Any, prompt: Sequence[int], max_new_tokens: int, layout: KvLayout,
           eos: Sequence[int] = ()) -> list[int]:
    """Greedy decoding with the cache, batch 1 (the build's reference loop; serving uses the engine)."""
    out = sess.run(None, _feeds(sess, prompt, None, 0, layout, keep=1))
    past = out[1:]
    tokens, length = [int(out[0][0, -1].argmax())], len(prompt)
    while len(tokens) < max_new_tokens and tokens[-1] not in eos:
        out = sess.run(None, _feeds(sess, [tokens[-1]], past, length, layout, keep=1))
        past = _grown(layout, past, out[1:])
        length += 1
        tokens.append(int(out[0][0, -1].argmax()))
    return tokens


def torch_greedy(model: Any, prompt: Sequence[int], max_new_tokens: int, eos: Sequence[int]) -> list[int]:
    import torch

    ids = torch.tensor([list(prompt)])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=list(eos) or None,
                             pad_token_id=(list(eos) or [0])[0])
    return out[0, ids.shape[1]:].tolist()


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


# ---------------------------------------------------------------------------------------------- tokenizer


def tokenizer_fields(hf_dir: Path, out_dir: Path, model: Any, extra_eos: Sequence[str] = ()) -> dict[str, Any]:
    """Copy the tokenizer (and chat template) next to the model; returns what the manifest says about it."""
    from tokenizers import Tokenizer

    copied = []
    for name in TOKENIZER_FILES:
        if (hf_dir / name).exists():
            shutil.copy2(hf_dir / name, out_dir / name)
            copied.append(name)
    if "tokenizer.json" not in copied:
        raise RuntimeError(f"{hf_dir} has no tokenizer.json (a fast tokenizer); save one with "
                           "AutoTokenizer.from_pretrained(...).save_pretrained(dir)")
    tok = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    config = json.loads((out_dir / "tokenizer_config.json").read_text()) if "tokenizer_config.json" in copied else {}
    template = config.get("chat_template")
    if isinstance(template, str) and "chat_template.jinja" not in copied:
        (out_dir / "chat_template.jinja").write_text(template)
        copied.append("chat_template.jinja")

    def token_text(value: Any) -> str | None:
        return value.get("content") if isinstance(value, dict) else value

    eos: list[int] = []
    gen_eos = getattr(model.generation_config, "eos_token_id", None) or getattr(model.config, "eos_token_id", None)
    for value in (gen_eos if isinstance(gen_eos, list) else [gen_eos]):
        if value is not None:
            eos.append(int(value))
    for text in [token_text(config.get("eos_token")), *extra_eos]:
        tid = tok.token_to_id(text) if text else None
        if tid is not None:
            eos.append(tid)
    probe = tok.encode("a", add_special_tokens=True).ids
    bare = tok.encode("a", add_special_tokens=False).ids
    return {
        "tokenizer": "tokenizer.json",
        "tokenizer_files": copied,
        "chat_template": "chat_template.jinja" if "chat_template.jinja" in copied else None,
        "bos_token": token_text(config.get("bos_token")),
        "eos_token": token_text(config.get("eos_token")),
        "eos_token_ids": sorted(set(eos)),
        "pad_token_id": int(getattr(model.config, "pad_token_id", None) or (sorted(set(eos)) or [0])[0]),
        "adds_special_tokens": probe != bare,
        "context_length": int(getattr(model.config, "max_position_embeddings", 0)
                              or getattr(model.config, "n_positions", 0) or 2048),
    }


def export_directory(hf_dir: Path, out_dir: Path, *, quantize_bits: int | None = None, block_size: int = 32,
                     model: Any = None, extra_eos: Sequence[str] = ()) -> dict[str, Any]:
    """A Hugging Face causal-LM folder -> ``out_dir/model.onnx`` + tokenizer files; returns manifest fields.

    With ``quantize_bits`` the weights are quantised (the float graph is exported to a temporary file first).
    """
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model if model is not None else load_model(hf_dir)
    target = out_dir / "model.onnx"
    float_path = target if quantize_bits is None else out_dir / "model.fp32.onnx"
    fields = export(model, float_path)
    if quantize_bits is not None:
        fields["quantization"] = quantize(float_path, target, bits=quantize_bits, block_size=block_size)
        float_path.unlink()
        for extra in out_dir.glob("model.fp32.onnx*"):
            extra.unlink()
    else:
        fields["quantization"] = None
    fields.update(tokenizer_fields(hf_dir, out_dir, model, extra_eos))
    fields["task"] = "text-generation"
    fields["architecture"] = type(model).__name__
    return fields
