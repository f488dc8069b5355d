"""Zero-shot head for the built-in creative-content labels (moods and genres) on top of text-encoder.

Each built-in label is the normalised mean of the sentence embeddings of a few hand-written descriptions
(``MOODS`` / ``GENRES`` below). The head is a single matrix product, written with onnx.helper:
``logits = logit_scale * embeddings @ labels^T`` ([batch, 384] -> [batch, L]), so it can be served through
the KServe v2 endpoint next to the encoder. Scores (softmax per group, or per-label sigmoid for
multi-label) are computed from these logits by ``nlp_analysis.zero_shot`` — the same code the service runs.

Hyper-parameters (caller-label template, logit scale, multi-label threshold) were chosen on the DEV half
(even line indices) of the hand-written set ``data/zero_shot_eval.jsonl``; the manifest's ``evaluation``
holds figures on the TEST half (odd line indices) only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from maas_modelbuild.core import BuildContext, Recipe, sha256_file
from maas_modelbuild.recipes._common import MINILM_PACKAGE

EVAL_SET = Path(__file__).resolve().parent.parent / "data" / "zero_shot_eval.jsonl"
OPSET = 17

# Chosen on the dev half (see choose() in this module's history / the report): the default template the
# service uses for caller labels, the scale that turns cosines into logits (dev cross-entropy), and the
# cosine above which a label counts as present in multi-label mode (dev F1).
TEMPLATE = "This text is about {}."
LOGIT_SCALE = 30.0
THRESHOLD = 0.3

# Built-in labels: several plain descriptions each; their mean embedding is the label's row.
MOODS: dict[str, list[str]] = {
    "happy": ["happy, cheerful music", "An upbeat, joyful song that makes you smile.",
              "Feel-good music full of sunshine and good vibes.", "A bright, cheerful tune for a celebration."],
    "sad": ["sad, melancholy music", "A sad song about loss, heartbreak and tears.",
            "Sorrowful, mournful music that makes you cry.", "A melancholy ballad full of grief and longing."],
    "calm": ["calm, peaceful music", "Relaxing, soothing music for rest and quiet.",
             "Gentle, tranquil sounds for sleep, study or meditation.",
             "A slow, mellow, peaceful piece with nothing in a hurry."],
    "energetic": ["energetic, high-energy music", "Fast, driving music with a pounding beat for working out.",
                  "An up-tempo track that makes you want to move and jump.",
                  "Intense, powerful music full of adrenaline."],
    "angry": ["angry, aggressive music", "An aggressive, furious song full of rage.",
              "Music that sounds mad, hostile and confrontational, with shouted vocals.",
              "A bitter, raging track about hate and revenge."],
    "romantic": ["romantic music", "A tender love song for a couple.",
                 "Sensual, intimate music for a candlelit date.", "A sweet ballad about falling in love."],
    "dark": ["dark, gloomy music", "Ominous, sinister music about death and shadows.",
             "Brooding, eerie and menacing sounds.", "A bleak, haunting song full of dread and decay."],
    "hopeful": ["hopeful, uplifting music", "An inspiring song about better days ahead.",
                "Optimistic music about overcoming hardship and starting again.",
                "Uplifting music full of hope and encouragement."],
    "nostalgic": ["nostalgic music", "A song that brings back memories of the past and of childhood.",
                  "Bittersweet, wistful music about the good old days.",
                  "Retro music that reminds you of years gone by."],
    "playful": ["playful, fun music", "A silly, whimsical and quirky tune.",
                "Cheeky, light-hearted music with a sense of humour.", "A bouncy, goofy song for kids and games."],
    "epic": ["epic music", "Grand, heroic music with a huge orchestra and choir.",
             "A majestic, larger-than-life anthem for a battle or a triumph.",
             "Soaring, monumental music that builds to a massive climax."],
    "tense": ["tense, suspenseful music", "Anxious, nervous music full of suspense.",
              "Music for a thriller scene that builds tension and unease.",
              "An edgy, uneasy track that keeps you on the edge of your seat."],
}
GENRES: dict[str, list[str]] = {
    "classical": ["classical music", "An orchestra playing a symphony or a concerto.",
                  "Music by composers such as Bach, Mozart, Beethoven or Chopin.",
                  "A string quartet, an opera or a solo piano sonata from the classical repertoire."],
    "jazz": ["jazz music", "A jazz band with saxophone, trumpet and improvised solos.",
             "Swing, bebop and jazz standards over a walking bass.", "A jazz piano trio playing in a club."],
    "rock": ["rock music", "A rock band with electric guitars, bass and drums.",
             "Guitar-driven rock: punk, grunge, indie or classic rock.", "Loud rock songs with guitar riffs and solos."],
    "pop": ["pop music", "A catchy pop song with a big chorus made for the radio.",
            "Chart-topping hits by pop stars.", "Mainstream pop with hooks, synths and a lead singer."],
    "hip hop": ["hip hop music", "Rap verses over beats, an MC rhyming.",
                "Hip hop with rappers, samples, 808s and trap beats.", "A rapper rapping over a drum beat."],
    "electronic": ["electronic music", "Electronic dance music made with synthesizers and drum machines.",
                   "Techno, house, trance and EDM for clubs and raves.", "A DJ track with synths, beats and drops."],
    "folk": ["folk music", "Acoustic folk songs with guitar, banjo or fiddle.",
             "Traditional folk ballads and singer-songwriter songs.",
             "A folk singer with an acoustic guitar telling a story."],
    "country": ["country music", "Country songs from Nashville with twang, steel guitar and fiddle.",
                "Country music about trucks, small towns, whiskey and heartbreak.",
                "A country singer in a cowboy hat with a honky-tonk band."],
    "metal": ["metal music", "Heavy metal with distorted guitars, fast riffs and screamed vocals.",
              "Thrash, death, doom or black metal.", "Extremely heavy, loud music with double bass drums and growls."],
    "blues": ["blues music", "Twelve-bar blues with slide guitar and harmonica.",
              "Delta blues and Chicago blues about hard times.", "A bluesman singing the blues with his guitar."],
    "ambient": ["ambient music", "Atmospheric ambient soundscapes with drones and pads.",
                "Ambient music without beats, slowly evolving textures.",
                "Background ambient drones and field recordings."],
    "r&b": ["R&B music", "Rhythm and blues, soul and neo-soul with smooth vocals.",
            "Contemporary R&B slow jams and soulful singing.", "Soul music with a groove and a gospel-trained singer."],
}


def builtin_labels() -> tuple[list[str], list[str], list[list[str]]]:
    """(names, groups, prompts) of the built-in labels, in matrix row order: moods first, then genres."""
    names = list(MOODS) + list(GENRES)
    groups = ["mood"] * len(MOODS) + ["genre"] * len(GENRES)
    prompts = list(MOODS.values()) + list(GENRES.values())
    return names, groups, prompts


class Encoder:
    """The built text-encoder model run the way the service runs it (tokenizer.json + ONNX Runtime)."""

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = json.loads((model_dir / "manifest.json").read_text())
        self.tok = Tokenizer.from_file(str(model_dir / manifest.get("tokenizer", "tokenizer.json")))
        self.tok.enable_truncation(int(manifest["max_length"]))
        self.tok.enable_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        self.sess = ort.InferenceSession(str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        self.dimension = int(manifest["dimension"])

    def __call__(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tok.encode_batch(texts[i:i + batch_size])
            feed = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
            out.append(self.sess.run(["embeddings"], feed)[0])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dimension), np.float32)


def load_eval(path: Path = EVAL_SET) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(dev, test) rows: even line indices are dev, odd ones test. Each row keeps its line index."""
    rows = [dict(json.loads(line), line=i) for i, line in enumerate(path.read_text().splitlines()) if line.strip()]
    return [r for r in rows if r["line"] % 2 == 0], [r for r in rows if r["line"] % 2 == 1]


def evaluate(rows: list[dict[str, Any]], embed: Callable[[list[str]], np.ndarray], label_emb: np.ndarray,
             names: list[str], groups: list[str], *, template: str, logit_scale: float,
             threshold: float) -> dict[str, Any]:
    """Top-1 accuracy, chance baselines, mean gold probability and multi-label figures on ``rows``."""
    from nlp_analysis import zero_shot

    builtin = [r for r in rows if "mood" in r]
    caller = [r for r in rows if "candidate_labels" in r]
    report: dict[str, Any] = {}

    if builtin:
        emb = embed([r["text"] for r in builtin])
        probs = zero_shot.grouped_scores(emb, label_emb, groups, logit_scale=logit_scale, multi_label=False,
                                         threshold=threshold)
        multi = zero_shot.grouped_scores(emb, label_emb, groups, logit_scale=logit_scale, multi_label=True,
                                         threshold=threshold)
        for group in ("mood", "genre"):
            cols = [j for j, g in enumerate(groups) if g == group]
            idx = [i for i, r in enumerate(builtin) if r.get(group)]
            gold = [cols.index(names.index(builtin[i][group])) for i in idx]
            p = probs[np.ix_(idx, cols)]
            m = multi[np.ix_(idx, cols)]
            hit = p.argmax(1) == np.array(gold)
            counts = np.bincount(gold, minlength=len(cols))
            report[group] = {
                "n": len(idx),
                "top1_accuracy": round(float(hit.mean()), 3),
                "top3_accuracy": round(float(np.mean([g in np.argsort(-row)[:3] for row, g in zip(p, gold)])), 3),
                "chance_accuracy": round(1.0 / len(cols), 3),
                "majority_class_accuracy": round(float(counts.max() / len(idx)), 3),
                "mean_gold_probability": round(float(p[np.arange(len(idx)), gold].mean()), 3),
                "multi_label_gold_over_0.5": round(float((m[np.arange(len(idx)), gold] > 0.5).mean()), 3),
                "multi_label_mean_labels_over_0.5": round(float((m > 0.5).sum(1).mean()), 2),
            }
        report["mood"]["n_texts_without_genre"] = sum(1 for r in builtin if not r.get("genre"))

    if caller:
        hits, gold_p, chance, gold_over, n_over = [], [], [], [], []
        per_task: dict[str, list[bool]] = {}
        for r in caller:
            labels = r["candidate_labels"]
            text_emb = embed([r["text"]])
            lab_emb = embed(zero_shot.hypotheses(labels, template))
            p = zero_shot.scores(text_emb, lab_emb, logit_scale=logit_scale, multi_label=False,
                                 threshold=threshold)[0]
            m = zero_shot.scores(text_emb, lab_emb, logit_scale=logit_scale, multi_label=True,
                                 threshold=threshold)[0]
            g = labels.index(r["label"])
            hits.append(bool(p.argmax() == g))
            gold_p.append(float(p[g]))
            chance.append(1.0 / len(labels))
            gold_over.append(bool(m[g] > 0.5))
            n_over.append(int((m > 0.5).sum()))
            per_task.setdefault("/".join(labels), []).append(hits[-1])
        report["caller_labels"] = {
            "n": len(caller),
            "top1_accuracy": round(float(np.mean(hits)), 3),
            "chance_accuracy": round(float(np.mean(chance)), 3),
            "mean_gold_probability": round(float(np.mean(gold_p)), 3),
            "multi_label_gold_over_0.5": round(float(np.mean(gold_over)), 3),
            "multi_label_mean_labels_over_0.5": round(float(np.mean(n_over)), 2),
            "per_task_top1": {k: {"n": len(v), "top1_accuracy": round(float(np.mean(v)), 3)}
                              for k, v in per_task.items()},
        }
    return report


def head_onnx(label_matrix: np.ndarray, logit_scale: float, path: Path) -> None:
    """logits = logit_scale * embeddings @ label_matrix^T, as a two-node ONNX graph (opset 17)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_labels, dim = label_matrix.shape
    weight = numpy_helper.from_array(np.ascontiguousarray(label_matrix.T, dtype=np.float32), "label_matrix_t")
    scale = numpy_helper.from_array(np.array(logit_scale, dtype=np.float32), "logit_scale")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["embeddings", "label_matrix_t"], ["cosine"]),
         helper.make_node("Mul", ["cosine", "logit_scale"], ["logits"])],
        "creative_labels",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_labels])],
        initializer=[weight, scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="maas_modelbuild")
    model.ir_version = 8  # readable by older runtimes (Triton's ONNX Runtime backend included)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def build(ctx: BuildContext) -> dict[str, Any]:
    import onnxruntime as ort

    from nlp_analysis import zero_shot

    template, logit_scale, threshold = ctx.params["template"], ctx.params["logit_scale"], ctx.params["threshold"]
    embed = Encoder(ctx.dependency("text-encoder"))
    names, groups, prompts = builtin_labels()
    label_emb = np.stack([zero_shot.label_embedding(embed, p) for p in prompts])
    head_onnx(label_emb, logit_scale, ctx.out_dir / "model.onnx")

    # The ONNX head must give what the numpy path gives.
    probe = embed(["A slow, sad piano ballad.", "Fast techno for the club!"])
    sess = ort.InferenceSession(str(ctx.out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"embeddings": probe})[0]
    drift = float(np.abs(logits - logit_scale * zero_shot.cosine(probe, label_emb)).max())
    if drift > 1e-3:
        raise RuntimeError(f"ONNX head drifted from numpy: max |diff| {drift}")

    _, test = load_eval()
    evaluation = evaluate(test, embed, label_emb, names, groups, template=template, logit_scale=logit_scale,
                          threshold=threshold)
    evaluation = {
        "split": "test half of data/zero_shot_eval.jsonl (odd line indices); template, logit_scale and "
                 "threshold were chosen on the dev half (even line indices)",
        "eval_set_sha256": ctx.params["eval_set_sha256"],
        **evaluation,
        "head_max_abs_diff_vs_numpy": round(drift, 7),
    }
    return {
        "task": "zero-shot-classification",
        "inputs": [{"name": "embeddings", "datatype": "FP32", "shape": [-1, int(label_emb.shape[1])]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, len(names)]}],
        "labels": [{"name": n, "group": g} for n, g in zip(names, groups)],
        "zero_shot": {"template": template, "logit_scale": logit_scale, "multi_label_threshold": threshold},
        "scoring": "multi_label=false: softmax of logits within each group (mood, genre); multi_label=true: "
                   "sigmoid(logits - logit_scale * multi_label_threshold) per label (nlp_analysis.zero_shot)",
        "license": "Apache-2.0 (label vectors from sentence-transformers/all-MiniLM-L6-v2 embeddings)",
        "evaluation": evaluation,
    }


RECIPE = Recipe(
    name="creative-labels",
    version=1,
    build=build,
    description="zero-shot head: 12 moods + 12 genres as label vectors over text-encoder embeddings",
    sources=(MINILM_PACKAGE,),
    params={
        "template": TEMPLATE,
        "logit_scale": LOGIT_SCALE,
        "threshold": THRESHOLD,
        "opset": OPSET,
        "eval_set_sha256": sha256_file(EVAL_SET),
    },
    depends=("text-encoder",),
    budget_s=60,
)
