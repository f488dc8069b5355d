"""MovieLens-100k as stand-in behaviour data: no music listening log can be had offline, so the collaborative
part is proven and measured on the 100,000 timestamped ratings RecBole ships (found without importing RecBole).

Protocol (one run, every model on the same split):
* temporal split, RecBole's default protocol for this data set (order by time, split 80/10/10 per user): each
  user's earliest 80% of interactions train, the next 10% validate (the blend is tuned there), the latest 10%
  test, after refitting on train + validation. A global time cut (train on everything before the 80th
  percentile of timestamps) is reported too: there most test users are new, which measures cold start;
* every rating is an interaction (implicit feedback); a user's relevant items are their test items not already
  in their training history; users without training history are the cold-start group;
* Recall@10 = hits / |relevant|, NDCG@10 with binary gains; items seen in training are never recommended.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from music_recommender import model as M

GENRE_WORDS = {"Children's": "children's", "Sci-Fi": "science fiction", "Film-Noir": "film noir"}


def dataset_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("recbole (the MovieLens-100k copy) is not installed: run `make venv`")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (path / "ml-100k.inter").exists():
        raise RuntimeError(f"{path}/ml-100k.inter is missing")
    return path


@dataclass
class Interactions:
    users: np.ndarray   # dense user index
    items: np.ndarray   # dense item index
    times: np.ndarray   # unix seconds
    n_users: int
    n_items: int
    item_text: list[str]  # per item: the description its content vector is made from


def load() -> Interactions:
    d = dataset_dir()
    with (d / "ml-100k.inter").open() as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    with (d / "ml-100k.item").open(encoding="latin-1") as f:
        items = list(csv.reader(f, delimiter="\t"))[1:]
    item_ids = {r[0]: i for i, r in enumerate(items)}
    user_ids: dict[str, int] = {}
    u = np.array([user_ids.setdefault(r[0], len(user_ids)) for r in rows])
    it = np.array([item_ids[r[1]] for r in rows])
    t = np.array([float(r[3]) for r in rows])
    text = []
    for r in items:
        genres = [GENRE_WORDS.get(g, g.lower()) for g in (r[3].split() if len(r) > 3 else [])]
        year = r[2] if len(r) > 2 and r[2].isdigit() else ""
        decade = f" from the {year[:3]}0s" if year else ""
        text.append(f"{' and '.join(genres) or 'a'} film{decade}")
    return Interactions(u, it, t, len(user_ids), len(items), text)


@dataclass
class Split:
    train: sp.csr_matrix          # users x items, binary
    train_times: np.ndarray       # per training interaction (for the prior), aligned with train_items
    train_items: np.ndarray
    now: float                    # the end of the training period
    relevant: list[set[int]]      # per user: test items not in their training history
    warm: np.ndarray              # users with training history and something relevant


def split(data: Interactions, lo: float, hi: float, per_user: bool = True) -> Split:
    """Chronological split. ``per_user`` (RecBole's ``TO`` + ``RS`` grouped by user, its default protocol): each
    user's earliest ``lo`` of interactions train, the next ``[lo, hi)`` test. Otherwise one global time cut:
    train before quantile ``lo`` of all timestamps, test in ``[lo, hi)`` (most test users are then new)."""
    if per_user:
        order = np.lexsort((data.times, data.users))
        u_sorted = data.users[order]
        starts = np.searchsorted(u_sorted, u_sorted, side="left")
        counts = np.bincount(u_sorted, minlength=data.n_users)[u_sorted]
        frac = (np.arange(len(order)) - starts) / counts
        tr, te = order[frac < lo], order[(frac >= lo) & (frac < hi)]
    else:
        order = np.argsort(data.times, kind="stable")
        n = len(order)
        tr, te = order[:int(n * lo)], order[int(n * lo):int(n * hi)]
    train = sp.csr_matrix((np.ones(len(tr), np.float32), (data.users[tr], data.items[tr])),
                          shape=(data.n_users, data.n_items))
    train.data[:] = 1.0  # duplicates (none in ML-100k) stay binary
    relevant: list[set[int]] = [set() for _ in range(data.n_users)]
    for uu, ii in zip(data.users[te], data.items[te]):
        relevant[uu].add(int(ii))
    seen = train.tolil().rows
    for uu in range(data.n_users):
        relevant[uu] -= set(seen[uu])
    has_history = np.diff(train.indptr) > 0
    warm = np.array([uu for uu in range(data.n_users) if has_history[uu] and relevant[uu]])
    return Split(train, data.times[tr], data.items[tr], float(data.times[tr].max()), relevant, warm)


def evaluate(scores: np.ndarray, s: Split, users: np.ndarray, k: int = 10) -> tuple[float, float]:
    ranked = M.top_k(scores, k, s.train[users])
    return M.recall_ndcg(ranked, [s.relevant[u] for u in users], k)


def popularity_scores(s: Split, n_users: int) -> np.ndarray:
    pop = np.asarray(s.train.sum(0)).ravel().astype(np.float32)
    return np.broadcast_to(pop, (n_users, len(pop)))


def default_als_scores(s: Split, users: np.ndarray, seed: int) -> np.ndarray:
    """implicit's AlternatingLeastSquares with every setting at its default (random_state fixed)."""
    from threadpoolctl import threadpool_limits
    from implicit.cpu.als import AlternatingLeastSquares

    als = AlternatingLeastSquares(random_state=seed, num_threads=2)
    with threadpool_limits(1, "blas"):
        als.fit(s.train, show_progress=False)
    return als.user_factors[users] @ als.item_factors.T


@dataclass
class Components:
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_taste: np.ndarray
    priors: dict[float, np.ndarray]


def components(s: Split, content: np.ndarray, als: M.AlsParams, seed: int, half_lives: list[float]) -> Components:
    uf, itf = M.train_als(s.train, als, seed=seed, threads=2)
    tst = M.taste_matrix(content, s.train)
    ones = np.ones(len(s.train_items))
    priors = {h: M.prior(s.train_items, s.train_times, ones, s.now, h, s.train.shape[1]) for h in half_lives}
    return Components(uf, itf, tst, priors)


def blend_scores(c: Components, content: np.ndarray, users: np.ndarray, b: M.Blend,
                 run: Callable[[dict], dict] | None = None) -> np.ndarray:
    """Hybrid scores for ``users`` over every item: through the ONNX scorer when ``run`` is given."""
    uf, tst = c.user_factors[users], c.user_taste[users]
    pri = c.priors[b.half_life_days]
    if run is None:
        return b.collaborative * (uf @ c.item_factors.T) + b.taste * (tst @ content.T) + b.popularity * pri[None, :]
    feeds = {"user_factors": uf, "user_taste": tst, "query": np.zeros_like(tst),
             "weights": np.tile(b.weights(), (len(users), 1)), "item_factors": c.item_factors,
             "item_content": content.astype(np.float32), "item_prior": pri}
    return run(feeds)["scores"]


def tune(data: Interactions, content: np.ndarray, seed: int, log: Callable[[str], None] = print,
         per_user: bool = True) -> tuple[M.AlsParams, M.Blend, dict]:
    """Coordinate search on the validation split (fit on the first 80%, score the next 10%): the ALS settings
    alone first, then the blend weights around them (the collaborative weight fixes the scale)."""
    s = split(data, 0.8, 0.9, per_user)
    started = time.monotonic()
    best_als: tuple[float, M.AlsParams, Components] | None = None
    for f, r, a in itertools.product((32, 64, 128), (0.1, 1.0, 5.0), (1.0, 4.0)):
        als = M.AlsParams(f, r, a, 15)
        c = components(s, content, als, seed, M.half_life_grid())
        ndcg = evaluate(blend_scores(c, content, s.warm, M.Blend(1.0, 0.0, 0.0, 0.0)), s, s.warm)[1]
        if best_als is None or ndcg > best_als[0]:
            best_als = (ndcg, als, c)
    assert best_als is not None
    als_ndcg, als, c = best_als
    best = (als_ndcg, M.Blend(1.0, 0.0, 0.0, 0.0))
    for h in M.half_life_grid():
        for wt, wp in itertools.product((0.0, 0.1, 0.25, 0.5, 1.0), (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)):
            b = M.Blend(1.0, wt, wp, h)
            ndcg = evaluate(blend_scores(c, content, s.warm, b), s, s.warm)[1]
            if ndcg > best[0] + 1e-6:
                best = (ndcg, b)
    log(f"tuned on validation in {time.monotonic() - started:.0f}s: {als} alone NDCG@10 {als_ndcg:.4f}; "
        f"blend {best[1]} NDCG@10 {best[0]:.4f}")
    return als, best[1], {"validation_ndcg@10_als_tuned": round(als_ndcg, 4),
                          "validation_ndcg@10_hybrid": round(best[0], 4)}
