"""all-MiniLM-L6-v2 sentence encoder with mean pooling and L2 normalisation inside the ONNX graph."""

from __future__ import annotations

from typing import Any

from maas_modelbuild.core import BuildContext, Recipe
from maas_modelbuild.recipes._common import MINILM_PACKAGE, copy_tokenizer, encode, export_onnx, minilm_dir

MAX_LENGTH = 256
PARITY_TEXTS = [
    "A quiet piano piece for a rainy afternoon.",
    "Loud!",
    "The orchestra played Beethoven's ninth symphony in Vienna on 7 May 1824, and the crowd wept.",
    "¿Dónde está la biblioteca? 東京 🎵",
]


def pooled_encoder(bert: Any) -> Any:
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return Pooled()


def build(ctx: BuildContext) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    torch.manual_seed(0)
    bert = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True)
    model = pooled_encoder(bert)
    batch = encode(PARITY_TEXTS, MAX_LENGTH)  # padded: texts of very different lengths
    example = (torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    export_onnx(model, example, ctx.out_dir / "model.onnx", ["input_ids", "attention_mask"], ["embeddings"],
                {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                 "embeddings": {0: "batch"}})
    tokenizer = copy_tokenizer(ctx.out_dir)

    sess = ort.InferenceSession(str(ctx.out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_emb = sess.run(None, batch)[0]
    st = SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)
    ref = st.encode(PARITY_TEXTS, normalize_embeddings=True)
    cos = (onnx_emb * ref).sum(1) / (np.linalg.norm(onnx_emb, axis=1) * np.linalg.norm(ref, axis=1))
    if cos.min() < 0.999:
        raise RuntimeError(f"ONNX encoder drifted from sentence-transformers: cosine {cos.min():.5f}")
    return {
        "task": "text-embedding",
        "inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]},
                   {"name": "attention_mask", "datatype": "INT64", "shape": [-1, -1]}],
        "outputs": [{"name": "embeddings", "datatype": "FP32", "shape": [-1, int(onnx_emb.shape[1])]}],
        "tokenizer": tokenizer,
        "max_length": MAX_LENGTH,
        "dimension": int(onnx_emb.shape[1]),
        "license": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "evaluation": {"parity_min_cosine_vs_sentence_transformers": round(float(cos.min()), 6)},
    }


RECIPE = Recipe(
    name="text-encoder",
    version=1,
    build=build,
    description="all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm in the graph), 384-d",
    sources=(MINILM_PACKAGE, "torch", "transformers", "sentence-transformers"),
    params={"max_length": MAX_LENGTH, "opset": 17},
    budget_s=120,
)
