"""The model pieces without a server: the ONNX scorer equals the numpy blend, fold-in equals an ALS user step,
the snapshot copy-on-write, and the real build's figures (from its manifest)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import scipy.sparse as sp

from music_recommender import model as M
from music_recommender import snapshot as S
from music_recommender.catalog import CatalogTrack
from music_recommender.store import Event, StoredTrack


def test_onnx_scorer_matches_the_numpy_blend(tmp_path):
    rng = np.random.default_rng(0)
    M.export_scorer(tmp_path / "s.onnx", 8, 12)
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"user_factors": rng.standard_normal((3, 8)), "user_taste": rng.standard_normal((3, 12)),
             "query": rng.standard_normal((3, 12)), "weights": rng.random((3, 4)),
             "item_factors": rng.standard_normal((50, 8)), "item_content": rng.standard_normal((50, 12)),
             "item_prior": rng.random(50)}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    scores, parts = sess.run(["scores", "contributions"], feeds)
    w = feeds["weights"]
    expected = (w[:, :1] * feeds["user_factors"] @ feeds["item_factors"].T
                + w[:, 1:2] * feeds["user_taste"] @ feeds["item_content"].T
                + w[:, 2:3] * feeds["query"] @ feeds["item_content"].T + w[:, 3:4] * feeds["item_prior"][None, :])
    assert np.allclose(scores, expected, atol=1e-4) and np.allclose(parts.sum(2), scores, atol=1e-4)


def test_fold_in_is_the_als_user_step():
    """Folding a training user back in gives (nearly) the factors ALS learnt for them."""
    rng = np.random.default_rng(1)
    m = sp.random(200, 120, density=0.08, random_state=2, format="csr", dtype=np.float32)
    m.data[:] = 1 + rng.integers(0, 3, m.nnz)
    params = M.AlsParams(16, 0.1, 2.0, 30)
    uf, itf = M.train_als(m, params, seed=0)
    g = M.gram(itf)
    cos = []
    for u in range(20):
        row = m[u]
        v = M.fold_in(itf, g, params, row.indices, row.data)
        cos.append(v @ uf[u] / (np.linalg.norm(v) * np.linalg.norm(uf[u])))
    assert np.mean(cos) > 0.98


def test_prior_decays_with_time():
    items = np.array([0, 0, 1, 1, 1])
    times = np.array([100.0, 100.0, 0.0, 0.0, 0.0]) * 86400
    recent = M.prior(items, times, np.ones(5), 100 * 86400, 7.0, 3)
    all_time = M.prior(items, times, np.ones(5), 100 * 86400, 0.0, 3)
    assert recent[0] > recent[1] and all_time[1] > all_time[0] and recent[2] == 0


def _rows(n: int) -> list[StoredTrack]:
    return [StoredTrack(CatalogTrack(track_id=f"t{i}", title=f"T{i}", collection="c"),
                        np.eye(6, dtype=np.float32)[i % 6], "catalog") for i in range(n)]


def test_snapshot_with_tracks_leaves_the_old_one_untouched():
    events = [Event(f"e{i}", f"u{i % 4}", f"t{i % 5}", "play", 0.0, 1.0) for i in range(40)]
    old = S.build(_rows(10), events, M.AlsParams(4, 0.1, 1.0, 5), M.Blend(), 1, 10_000, 8, 6)
    content_before = old.content.copy()
    new = S.with_tracks(old, [StoredTrack(CatalogTrack(track_id="t3", title="changed"), np.ones(6, np.float32),
                                          "api"),
                              StoredTrack(CatalogTrack(track_id="x", title="new"), np.ones(6, np.float32), "api")], 2)
    assert len(old) == 10 and len(new) == 11 and new.index["x"] == 10 and new.titles[3] == "changed"
    assert np.array_equal(old.content, content_before) and old.titles[3] == "T3"
    assert not new.item_factors[10].any() and old.plays[:5].sum() == 40


def test_the_built_model_beats_both_baselines_and_answers_queries(repository):
    manifest = json.loads((repository / "music-recommender" / "1" / "manifest.json").read_text())
    ev = manifest["evaluation"]
    ml = ev["movielens_100k"]["per_user_temporal_80_10_10"]
    for metric in ("recall@10", "ndcg@10"):
        assert ml["hybrid"][metric] > ml["popularity"][metric]
        assert ml["hybrid"][metric] > ml["implicit_als_default"][metric]
    assert ml["users"] == 943
    assert ev["query_precision@5"] >= 0.8
    assert manifest["build_seconds"] <= manifest["budget_seconds"]
    assert manifest["catalog"]["tracks"] > 14000
