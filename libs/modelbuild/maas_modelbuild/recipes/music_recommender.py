"""music-recommender: the hybrid scorer (ONNX), the music21 catalog with its content vectors, and the evaluation.

* Catalog: every piece of the music21 core corpus with metadata (~15k), from the prebuilt metadata bundle; each
  track's profile text (style, form, instrumentation, metre, origin) is embedded with the text-encoder model —
  the same vectors nlp-analysis's EmbedText returns — and a few symbolic features are appended.
* Collaborative part, proven on MovieLens-100k (the stand-in behaviour log, see music_recommender.movielens):
  ALS settings and blend weights tuned on a validation split, then Recall@10 / NDCG@10 on the test split
  against a popularity baseline and implicit's ALS with default settings, all in this one run.
* Query retrieval on the music catalog: precision@5 of a labelled query set (data/music_queries.jsonl).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from maas_modelbuild.core import BuildContext, Recipe, model_dir

SEED = 0
DATA = Path(__file__).resolve().parents[1] / "data" / "music_queries.jsonl"


def _code_hash() -> str:
    """The service modules this build runs (catalog, model, evaluation) are part of the build key."""
    import importlib.util

    spec = importlib.util.find_spec("music_recommender")
    h = hashlib.sha256(DATA.read_bytes())
    if spec is not None and spec.submodule_search_locations:
        base = Path(list(spec.submodule_search_locations)[0])
        for name in ("catalog.py", "model.py", "movielens.py", "features.py"):
            if (base / name).exists():
                h.update((base / name).read_bytes())
    return h.hexdigest()[:16]


def _relevant(track: Any, rule: dict) -> bool:
    if "collections" in rule and track.collection not in rule["collections"]:
        return False
    if "tags" in rule and not set(rule["tags"]) & set(track.tags):
        return False
    if "origins" in rule and track.origin not in rule["origins"]:
        return False
    return True


def build(ctx: BuildContext) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    from music_recommender import features
    from music_recommender import model as M
    from music_recommender import movielens as ML
    from music_recommender.catalog import music21_catalog

    log = lambda msg: print(f"[music-recommender] {msg}", flush=True)  # noqa: E731
    t0 = time.monotonic()
    encoder = features.TextEncoder(model_dir(ctx.repository, "text-encoder"))

    # ---- catalog and its content vectors
    tracks = list(music21_catalog())
    text = encoder.embed_unique([t.profile for t in tracks])
    content = features.content_vectors(text, [features.symbolic(t) for t in tracks])
    np.save(ctx.out_dir / "content.npy", content)
    with (ctx.out_dir / "catalog.jsonl").open("w") as f:
        for t in tracks:
            f.write(json.dumps(t.as_dict(), ensure_ascii=False) + "\n")
    t_catalog = time.monotonic() - t0
    log(f"catalog: {len(tracks)} tracks, {len({t.profile for t in tracks})} distinct profiles, {t_catalog:.0f}s")

    # ---- MovieLens-100k: tune on validation, then every model on the test split in this one run
    data = ML.load()
    ml_content = features.content_vectors(encoder.embed_unique(data.item_text), None)
    als, blend, tuning = ML.tune(data, ml_content, SEED, log)
    M.export_scorer(ctx.out_dir / "model.onnx", als.factors, content.shape[1])
    ml_path = ctx.out_dir / "ml_scorer.onnx"
    M.export_scorer(ml_path, als.factors, ml_content.shape[1])
    sess = ort.InferenceSession(str(ml_path), providers=["CPUExecutionProvider"])
    run = lambda feeds: dict(zip(M.SCORER_OUTPUTS, sess.run(list(M.SCORER_OUTPUTS), feeds)))  # noqa: E731

    results: dict[str, dict] = {}
    for protocol, per_user in (("per_user_temporal_80_10_10", True), ("global_time_cut_90", False)):
        s = ML.split(data, 0.9, 1.0, per_user)
        users = s.warm
        c = ML.components(s, ml_content, als, SEED, [blend.half_life_days])
        figures = {
            "popularity": ML.evaluate(ML.popularity_scores(s, len(users)), s, users),
            "implicit_als_default": ML.evaluate(ML.default_als_scores(s, users, SEED), s, users),
            "als_tuned_alone": ML.evaluate(ML.blend_scores(c, ml_content, users, M.Blend(1, 0, 0, 0)), s, users),
            "hybrid": ML.evaluate(ML.blend_scores(c, ml_content, users, blend, run), s, users),
        }
        results[protocol] = {"users": int(len(users)), **{
            name: {"recall@10": round(r, 4), "ndcg@10": round(n, 4)} for name, (r, n) in figures.items()}}
        log(f"{protocol}: {results[protocol]}")
    ml_path.unlink()

    # ---- query retrieval on the music catalog (through the served scorer, query weight only)
    sess = ort.InferenceSession(str(ctx.out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    queries = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    qv = features.pad(encoder.embed([q["query"] for q in queries]), content.shape[1])
    n = len(tracks)
    feeds = {"user_factors": np.zeros((len(queries), als.factors), np.float32),
             "user_taste": np.zeros_like(qv), "query": qv,
             "weights": np.tile(np.array([0, 0, 1, 0], np.float32), (len(queries), 1)),
             "item_factors": np.zeros((n, als.factors), np.float32), "item_content": content,
             "item_prior": np.zeros(n, np.float32)}
    scores = sess.run(["scores"], feeds)[0]
    per_query = {}
    for q, row in zip(queries, scores):
        top = np.argsort(-row, kind="stable")[:5]
        per_query[q["query"]] = sum(_relevant(tracks[i], q["relevant"]) for i in top) / 5
    p5 = float(np.mean(list(per_query.values())))
    log(f"query precision@5 {p5:.3f} over {len(queries)} queries")

    return {
        "task": "recommendation",
        **M.scorer_contract(als.factors, content.shape[1]),
        "components": list(M.COMPONENTS),
        "als": als.as_dict(),
        "blend": blend.as_dict(),
        "text_dimension": int(text.shape[1]),
        "symbolic_features": list(features.SYMBOLIC),
        "symbolic_scale": features.SYMBOLIC_SCALE,
        "content_dimension": int(content.shape[1]),
        "catalog": {"file": "catalog.jsonl", "content": "content.npy", "tracks": len(tracks),
                    "source": "music21 core corpus metadata bundle", "seconds": round(t_catalog, 1)},
        "evaluation": {
            "movielens_100k": {"protocol": ML.__doc__.split("Protocol")[1].strip(), **results, "tuning": tuning},
            "query_precision@5": round(p5, 4),
            "query_precision@5_per_query": per_query,
        },
        "license": "music21 corpus (BSD / public domain scores); MovieLens-100k (GroupLens terms, research use)",
    }


RECIPE = Recipe(
    name="music-recommender",
    version=1,
    build=build,
    description="hybrid recommender: ALS + content (text-encoder) + popularity prior, ONNX scorer, music21 catalog",
    sources=("music21", "recbole", "implicit", "numpy", "scipy"),
    params={"seed": SEED, "code": _code_hash()},
    depends=("text-encoder",),
    budget_s=120,
)
