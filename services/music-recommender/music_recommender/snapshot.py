"""The serving snapshot: every array a request reads, built in one go (from the store, or synthetic for load
tests) and then never mutated. The pipeline swaps the reference atomically: a request reads ``pipeline.snapshot``
once, so it sees either the old model or the new one, never a half-built one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from music_recommender import model as M
from music_recommender.index import AnnIndex
from music_recommender.store import Event, StoredTrack


def confidence(kind: str, value: float) -> float:
    """How much an event says the listener likes the track (skips and low ratings say nothing positive)."""
    if kind == "play":
        return 1.0
    if kind == "like":
        return 3.0
    if kind == "rating":
        return max(0.0, value - 2.5)
    return 0.0


@dataclass
class Snapshot:
    version: int
    ids: list[str]
    titles: list[str]
    collection: np.ndarray       # object arrays, for filters
    composer: np.ndarray         # lower-cased
    time_signature: np.ndarray
    parts: np.ndarray            # int32
    item_factors: np.ndarray     # [N, F] float32
    gram: np.ndarray             # [F, F] float64
    content: np.ndarray          # [N, C] float32
    prior: np.ndarray            # [N] float32
    plays: np.ndarray            # [N] int64 positive interactions in the training data
    popular: np.ndarray          # rows with the highest prior (always candidates)
    ann: AnnIndex | None
    unindexed: np.ndarray        # rows added since the ANN index was built (always candidates)
    users: int = 0
    events: int = 0
    built_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {t: i for i, t in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


def _columns(rows: Sequence[StoredTrack]) -> dict:
    return {
        "ids": [r.track.track_id for r in rows], "titles": [r.track.title for r in rows],
        "collection": np.array([r.track.collection for r in rows], dtype=object),
        "composer": np.array([r.track.composer.lower() for r in rows], dtype=object),
        "time_signature": np.array([r.track.time_signature for r in rows], dtype=object),
        "parts": np.array([r.track.part_count for r in rows], dtype=np.int32),
    }


def build(rows: Sequence[StoredTrack], events: Iterable[Event], als: M.AlsParams, blend: M.Blend, version: int,
          ann_min_items: int, ann_nprobe: int, content_dim: int, seed: int = 0) -> Snapshot:
    """Fit ALS on the stored interactions and assemble every serving array."""
    started = time.monotonic()
    cols = _columns(rows)
    index = {t: i for i, t in enumerate(cols["ids"])}
    content = np.zeros((len(rows), content_dim), np.float32)
    for i, r in enumerate(rows):
        content[i, :min(content_dim, len(r.content))] = r.content[:content_dim]
    users: dict[str, int] = {}
    u, it, w, ts = [], [], [], []
    for e in events:
        row = index.get(e.track_id)
        c = confidence(e.kind, e.value)
        if row is None or c <= 0:
            continue
        u.append(users.setdefault(e.user_id, len(users)))
        it.append(row)
        w.append(c)
        ts.append(e.occurred_at)
    n = len(rows)
    matrix = sp.csr_matrix((np.array(w, np.float32), (np.array(u, np.int64), np.array(it, np.int64))),
                           shape=(len(users), n))
    matrix.sum_duplicates()
    _, item_factors = M.train_als(matrix, als, seed=seed, threads=2)
    items = np.array(it, np.int64)
    prior = M.prior(items, np.array(ts, np.float64), np.array(w, np.float64), time.time(), blend.half_life_days, n)
    plays = np.bincount(items, minlength=n)[:n] if len(items) else np.zeros(n, np.int64)
    ann = AnnIndex(item_factors, content, nprobe=ann_nprobe, seed=seed) if n >= ann_min_items else None
    return Snapshot(version=version, **cols, item_factors=item_factors, gram=M.gram(item_factors), content=content,
                    prior=prior, plays=plays, popular=np.argsort(-prior, kind="stable")[:200], ann=ann,
                    unindexed=np.zeros(0, np.int64), users=len(users), events=len(w),
                    seconds=time.monotonic() - started, index=index)


def with_tracks(snap: Snapshot, rows: Sequence[StoredTrack], version: int) -> Snapshot:
    """A copy with tracks added or replaced (UpsertTracks): new tracks have no collaborative factors yet (cold
    start: content and query only) until the next retrain; the old snapshot stays valid for requests in flight."""
    content_dim = snap.content.shape[1]
    ids = list(snap.ids)
    index = dict(snap.index)
    new_rows = [r for r in rows if r.track.track_id not in index]
    for r in new_rows:
        index[r.track.track_id] = len(ids)
        ids.append(r.track.track_id)
    n_old, n = len(snap.ids), len(ids)
    grow = lambda a, fill=0: np.concatenate([a, np.full((n - n_old, *a.shape[1:]), fill, a.dtype)])  # noqa: E731
    out = replace(snap, version=version, ids=ids, index=index, titles=list(snap.titles) + [""] * (n - n_old),
                  collection=grow(snap.collection, ""), composer=grow(snap.composer, ""),
                  time_signature=grow(snap.time_signature, ""), parts=grow(snap.parts),
                  item_factors=grow(snap.item_factors), content=grow(snap.content), prior=grow(snap.prior),
                  plays=grow(snap.plays),
                  unindexed=np.concatenate([snap.unindexed, np.arange(n_old, n)]) if snap.ann is not None
                  else snap.unindexed, built_at=time.time())
    for r in rows:
        i = index[r.track.track_id]
        out.titles[i] = r.track.title
        out.collection[i] = r.track.collection
        out.composer[i] = r.track.composer.lower()
        out.time_signature[i] = r.track.time_signature
        out.parts[i] = r.track.part_count
        out.content[i] = 0
        out.content[i, :min(content_dim, len(r.content))] = r.content[:content_dim]
    return out


def synthetic(n: int, factors: int, content_dim: int, ann_nprobe: int, seed: int = 0, clusters: int = 512
              ) -> Snapshot:
    """A load-test catalog of ``n`` items: clustered unit content vectors, ALS-like factors, a skewed prior."""
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, content_dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    fcentres = rng.standard_normal((clusters, factors)).astype(np.float32) * 0.3
    assign = rng.integers(0, clusters, n)
    content = np.empty((n, content_dim), np.float32)
    item_factors = np.empty((n, factors), np.float32)
    for i in range(0, n, 100_000):
        a = assign[i:i + 100_000]
        c = centres[a] + 0.5 * rng.standard_normal((len(a), content_dim), dtype=np.float32) / np.sqrt(content_dim)
        content[i:i + len(a)] = c / np.linalg.norm(c, axis=1, keepdims=True)
        item_factors[i:i + len(a)] = fcentres[a] + 0.1 * rng.standard_normal((len(a), factors), dtype=np.float32)
    plays = rng.zipf(1.5, n).clip(max=100_000).astype(np.int64)
    prior = (np.log1p(plays) / np.log1p(plays.max())).astype(np.float32)
    ids = [f"syn:{i}" for i in range(n)]
    ann = AnnIndex(item_factors, content, nprobe=ann_nprobe, seed=seed)
    empty = np.full(n, "", dtype=object)
    return Snapshot(version=1, ids=ids, titles=[f"Synthetic piece {i}" for i in range(n)], collection=empty,
                    composer=empty, time_signature=empty, parts=np.zeros(n, np.int32), item_factors=item_factors,
                    gram=M.gram(item_factors), content=content, prior=prior, plays=plays,
                    popular=np.argsort(-prior, kind="stable")[:200], ann=ann, unindexed=np.zeros(0, np.int64),
                    seconds=time.monotonic() - started)
