"""The served models against their references, through the serving code path (tokenizer + ONNX Runtime)."""

import json

import numpy as np
import pytest

from maas_runtime.executor import BoundedExecutor
from maas_runtime.onnx_model import OnnxModel
from maas_modelbuild.core import sha256_file
from nlp_analysis.pipeline import TokenizedModel

MODELS = ("text-encoder", "sentiment", "creative-labels")


def test_encoder_matches_sentence_transformers_on_a_padded_batch(make_settings, repository):
    from sentence_transformers import SentenceTransformer

    from maas_modelbuild.recipes._common import minilm_dir

    texts = ["Hi!", "Ein Lied über den Regen in Wien, leise und traurig. " * 3,
             "🎹 late-night lo-fi beats to study to", "The Goldberg Variations, BWV 988, were published in 1741."]
    s = make_settings()
    served = TokenizedModel(OnnxModel.load(repository, "text-encoder", s, BoundedExecutor(1)), s)
    ours = served.run_sync(texts)  # one padded batch: lengths differ a lot
    ref = SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.999


def test_manifests_describe_the_files_that_are_served(repository):
    for name in MODELS:
        d = repository / name / "1"
        manifest = json.loads((d / "manifest.json").read_text())
        assert manifest["sources"] and manifest["recipe_key"] and manifest["evaluation"]
        for rel, digest in manifest["files"].items():
            assert sha256_file(d / rel) == digest, f"{name}/{rel} differs from its manifest"


def test_sentiment_held_out_accuracy_through_the_served_path(make_settings, repository):
    """Recomputes the manifest's held-out figure with the serving tokenizer and ONNX Runtime."""
    from maas_modelbuild.recipes import sentiment as recipe
    from nlp_analysis.pipeline import SENTIMENT_LABELS

    manifest = json.loads((repository / "sentiment" / "1" / "manifest.json").read_text())
    items, _ = recipe.load_corpus()
    p = manifest["params"]
    _, _, test = recipe.split(items, p["seed"], p["test_fraction"], p["dev_fraction"])
    s = make_settings()
    served = TokenizedModel(OnnxModel.load(repository, "sentiment", s, BoundedExecutor(1)), s)
    texts, gold = [t for t, _, _ in test], np.array([y for _, y, _ in test])
    pred = np.concatenate([served.run_sync(texts[i:i + 256]).argmax(1) for i in range(0, len(texts), 256)])
    accuracy = float((pred == gold).mean())
    assert len(test) > 3000 and manifest["labels"] == list(SENTIMENT_LABELS)
    assert accuracy == pytest.approx(manifest["evaluation"]["accuracy"], abs=0.005)
    assert accuracy >= 0.80, f"held-out accuracy {accuracy:.3f} is below the 0.80 goal"
