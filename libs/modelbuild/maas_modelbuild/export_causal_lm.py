"""``python -m maas_modelbuild.export_causal_lm HF_DIR OUT_DIR [--quantize int8|int4|none]``

Exports any local Hugging Face causal-LM folder (config.json, weights, tokenizer.json; Llama, GPT-2, ...) to
an ONNX graph with a KV cache that the text-generator serves, with a manifest.json beside it. Put OUT_DIR in
the model repository as ``models/<name>/<version>`` and point the server at it::

    python -m maas_modelbuild.export_causal_lm ~/my-gpt2 models/my-gpt2-int8/1 --quantize int8
    TEXTGEN_MODEL=my-gpt2 TEXTGEN_QUANTIZATION=int8 python -m text_generator

Nothing is downloaded: the folder must hold the weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from maas_modelbuild import causal_lm
from maas_modelbuild.core import MANIFEST, sha256_file

BITS = {"none": None, "int8": 8, "int4": 4}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="maas_modelbuild.export_causal_lm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", type=Path, help="a local Hugging Face causal-LM folder")
    ap.add_argument("out_dir", type=Path, help="where model.onnx, the tokenizer and manifest.json go")
    ap.add_argument("--quantize", choices=sorted(BITS), default="none",
                    help="weight-only MatMulNBits quantisation (int8: near-lossless; int4: smaller, lossier)")
    ap.add_argument("--block-size", type=int, help="quantisation block (input channels per scale); default: "
                    "64 for int8 (as fast as it gets here, perplexity as with 32), 32 for int4")
    ap.add_argument("--name", help="model name in the manifest (default: the parent folder's name)")
    ap.add_argument("--eos-token", action="append", default=[],
                    help="an extra token that ends generation (repeatable), e.g. '<|endoftext|>'")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not (args.hf_dir / "config.json").exists():
        ap.error(f"{args.hf_dir} has no config.json: not a Hugging Face model folder")
    started = time.monotonic()
    block = args.block_size or (64 if args.quantize == "int8" else 32)
    fields = causal_lm.export_directory(args.hf_dir, args.out_dir, quantize_bits=BITS[args.quantize],
                                        block_size=block, extra_eos=args.eos_token)
    name = args.name or (args.out_dir.parent.name if args.out_dir.name.isdigit() else args.out_dir.name)
    manifest = {
        "name": name,
        "version": int(args.out_dir.name) if args.out_dir.name.isdigit() else 1,
        "description": f"{fields['architecture']} exported from {args.hf_dir.resolve()}",
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - started, 1),
        "source": {"hf_dir": str(args.hf_dir.resolve())},
        **fields,
        "files": {str(p.relative_to(args.out_dir)): sha256_file(p)
                  for p in sorted(args.out_dir.rglob("*")) if p.is_file() and p.name != MANIFEST},
    }
    (args.out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    print(f"{args.out_dir / 'model.onnx'}: {fields['kv_cache']['layers']} layers, vocab {fields['vocab_size']}, "
          f"context {fields['context_length']}, quantization {args.quantize}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
