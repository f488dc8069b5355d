"""The recommender's work in plain Python/numpy (no gRPC): request validation, candidate generation, scoring
through the ONNX scorer, reasons, the store calls, retraining and the atomic snapshot swap.

Blocking work runs off the event loop: store calls on a one-thread executor (SQLite wants one writer; commits
are serialised anyway), ONNX on the runtime's executor, retraining on its own thread so that it never delays
a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from maas_runtime.errors import InvalidArgument, NotFound, quote, Unavailable
from maas_runtime.executor import BoundedExecutor
from maas_runtime.onnx_model import OnnxModel
from music_recommender import features
from music_recommender import model as M
from music_recommender import snapshot as S
from music_recommender.catalog import CatalogTrack, describe, profile_text, title_tags
from music_recommender.settings import RecommenderSettings
from music_recommender.store import EVENT_KINDS, Event, Store, StoredTrack

log = logging.getLogger("maas.music_recommender")

Embedder = Callable[..., Awaitable[np.ndarray]]  # (texts, field name for errors) -> [len(texts), dim]

# With a query (or seeds) the request's own words lead; what we know of the listener nudges.
QUERY_WEIGHT = 1.0
PERSONAL_WITH_QUERY = 0.3


@dataclass
class Filters:
    collections: list[str] = field(default_factory=list)
    composers: list[str] = field(default_factory=list)
    time_signatures: list[str] = field(default_factory=list)
    min_part_count: int = 0
    max_part_count: int = 0
    exclude_track_ids: list[str] = field(default_factory=list)
    include_interacted: bool = False


@dataclass
class Recommended:
    track: CatalogTrack
    score: float
    reason: str
    contributions: tuple[float, float, float, float]


@dataclass
class RecommendResult:
    items: list[Recommended]
    cold_start: bool
    snapshot_version: int


@dataclass
class RetrainResult:
    snapshot_version: int
    tracks: int
    users: int
    interactions: int
    seconds: float


def _check_id(value: str, field_name: str, limit: int) -> None:
    if not value or not value.strip():
        raise InvalidArgument(field_name, "must not be empty")
    if len(value) > limit:
        raise InvalidArgument(field_name, f"longer than {limit} characters")


class RecommenderPipeline:
    def __init__(self, scorer: OnnxModel, store: Store, embed: Embedder, settings: RecommenderSettings,
                 train_executor: BoundedExecutor | None = None) -> None:
        self.scorer = scorer
        self.store = store
        self.embed_text = embed
        self.settings = settings
        self.io = BoundedExecutor(1, max_pending=4096, name="store")
        self.trainer = train_executor or BoundedExecutor(1, max_pending=64, name="train")
        m = scorer.manifest
        self.als = M.AlsParams(**m["als"])
        self.blend = M.Blend(**m["blend"])
        self.content_dim = int(m["content_dimension"])
        self.text_dim = int(m["text_dimension"])
        self.snapshot: S.Snapshot | None = None
        self._version = 0
        self._retrain_lock = asyncio.Lock()
        self._catalog_lock = asyncio.Lock()
        self._new_events = 0
        self._scheduler: asyncio.Task | None = None
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    async def _store(self, fn: Callable, *args: Any) -> Any:
        """A store call on the store thread; a database that cannot be reached is UNAVAILABLE (retryable)."""
        try:
            return await self.io.run(fn, *args)
        except self.store.transient as e:
            raise Unavailable(f"the interaction store is unavailable: {type(e).__name__}: {e}") from e

    @property
    def models(self) -> list[OnnxModel]:
        return [self.scorer]

    # ------------------------------------------------------------------------------------------ lifecycle
    def seed_catalog(self) -> int:
        """Load the built catalog into the store (once per build)."""
        directory = Path(self.scorer.directory)
        cat = self.scorer.manifest["catalog"]
        tracks = [CatalogTrack.from_dict(json.loads(line))
                  for line in (directory / cat["file"]).read_text().splitlines() if line.strip()]
        content = np.load(directory / cat["content"])
        return self.store.seed_catalog(self.scorer.build_key or "unbuilt", tracks, content)

    async def warmup(self) -> None:
        s = self.settings
        if s.synthetic_items:
            snap = await self.trainer.run(S.synthetic, s.synthetic_items, self.als.factors, self.content_dim,
                                          s.ann_nprobe)
            # the first 10k synthetic tracks go into the store too, so that load tests can record listening
            rows = [StoredTrack(CatalogTrack(track_id=snap.ids[i], title=snap.titles[i]), snap.content[i], "api")
                    for i in range(min(10_000, len(snap)))]
            await self._store(self.store.upsert_tracks, rows)
            self._install(snap)
        else:
            seeded = await self.io.run(self.seed_catalog)
            if seeded:
                log.info("catalog seeded into the store", extra={"tracks": seeded})
            await self.retrain()
        snap = self.snapshot
        assert snap is not None
        await self._score(snap, np.zeros(self.als.factors, np.float32), np.zeros(self.content_dim, np.float32),
                          np.zeros(self.content_dim, np.float32), self.blend.weights(), self._candidates_all(snap))
        self.scorer.ready = True
        if s.retrain_interval_s > 0 and not s.synthetic_items:
            self._scheduler = asyncio.get_running_loop().create_task(self._schedule(s.retrain_interval_s))

    async def close(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            try:
                await self._scheduler
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
        self.io.shutdown()
        self.trainer.shutdown()
        self.store.close()

    async def _schedule(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self._new_events:
                try:
                    await self.retrain()
                except Exception:  # noqa: BLE001 - the old snapshot keeps serving; the next tick retries
                    log.exception("scheduled retrain failed")

    # ------------------------------------------------------------------------------------------ retraining
    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def _install(self, snap: S.Snapshot) -> None:
        self.snapshot = snap  # one reference assignment: requests see the old or the new snapshot, whole
        log.info("snapshot installed", extra={"version": snap.version, "tracks": len(snap), "users": snap.users,
                                              "events": snap.events, "seconds": round(snap.seconds, 2)})

    def _build(self, version: int) -> S.Snapshot:
        rows = list(self.store.all_tracks())
        events = list(self.store.all_events())
        return S.build(rows, events, self.als, self.blend, version, self.settings.ann_min_items,
                       self.settings.ann_nprobe, self.content_dim)

    async def retrain(self) -> RetrainResult:
        """Refit from the store on the training thread; swap when complete (one retrain at a time)."""
        async with self._retrain_lock:
            pending = self._new_events
            started = time.monotonic()
            async with self._catalog_lock:  # an upsert during the build would be lost by the swap
                try:
                    snap = await self.trainer.run(self._build, self._next_version())
                except self.store.transient as e:
                    raise Unavailable(f"the interaction store is unavailable: {type(e).__name__}: {e}") from e
                self._install(snap)
            self._new_events -= pending
            return RetrainResult(snap.version, len(snap), snap.users, snap.events, time.monotonic() - started)

    # ------------------------------------------------------------------------------------------ validation
    def _check_k(self, k: int) -> None:
        if k <= 0:
            raise InvalidArgument("k", f"must be between 1 and {self.settings.max_k}, got {k}")
        if k > self.settings.max_k:
            raise InvalidArgument("k", f"must be at most {self.settings.max_k}, got {k}")

    def _check_filters(self, f: Filters) -> None:
        s = self.settings
        for name in ("collections", "composers", "time_signatures", "exclude_track_ids"):
            values = getattr(f, name)
            if len(values) > s.max_filter_values:
                raise InvalidArgument(f"filter.{name}", f"{len(values)} values; at most {s.max_filter_values}")
            for i, v in enumerate(values):
                if len(v) > s.max_id_chars:
                    raise InvalidArgument(f"filter.{name}[{i}]", f"longer than {s.max_id_chars} characters")
        if f.min_part_count < 0:
            raise InvalidArgument("filter.min_part_count", "must not be negative")
        if f.max_part_count < 0:
            raise InvalidArgument("filter.max_part_count", "must not be negative")
        if f.max_part_count and f.min_part_count > f.max_part_count:
            raise InvalidArgument("filter.max_part_count", "is below filter.min_part_count")

    # ------------------------------------------------------------------------------------------ recommend
    async def recommend(self, user_id: str, query_text: str, seed_track_ids: Sequence[str], k: int,
                        filters: Filters) -> RecommendResult:
        s = self.settings
        self._check_k(k)
        if not (user_id or query_text.strip() or seed_track_ids):
            raise InvalidArgument("user_id", "one of user_id, query_text or seed_track_ids is required")
        if user_id:
            _check_id(user_id, "user_id", s.max_id_chars)
        if len(query_text) > s.max_query_chars:
            raise InvalidArgument("query_text", f"longer than {s.max_query_chars} characters")
        if query_text and not query_text.strip():
            raise InvalidArgument("query_text", "is blank")
        if len(seed_track_ids) > s.max_seed_tracks:
            raise InvalidArgument("seed_track_ids", f"more than {s.max_seed_tracks} seed tracks")
        for i, t in enumerate(seed_track_ids):
            _check_id(t, f"seed_track_ids[{i}]", s.max_id_chars)
        self._check_filters(filters)
        snap = self._ready()
        seeds = []
        for i, t in enumerate(seed_track_ids):
            if t not in snap.index:
                raise NotFound(f"seed_track_ids[{i}]: track {quote(t)} is not in the catalog")
            seeds.append(snap.index[t])

        history = await self._store(self.store.user_events, user_id, s.history_limit) if user_id else []
        items, conf, heard = self._history(snap, history)
        cold = bool(user_id) and not history
        user_f = M.fold_in(snap.item_factors, snap.gram, self.als, items, conf)
        user_t = M.taste(snap.content, items, conf)
        query = np.zeros(self.content_dim, np.float32)
        qtext = query_text.strip()
        if qtext:
            query += await self._embed_query(qtext)
        if seeds:
            sv = snap.content[seeds].mean(0)
            query += sv / max(float(np.linalg.norm(sv)), 1e-9)
            user_f = user_f + snap.item_factors[seeds].mean(0)
        qn = float(np.linalg.norm(query))
        if qn > 0:
            query /= qn
            b = self.blend
            personal = PERSONAL_WITH_QUERY if (qtext or history) else 1.0
            weights = np.array([b.collaborative * personal, b.taste * personal, QUERY_WEIGHT,
                                b.popularity * PERSONAL_WITH_QUERY], np.float32)
        else:
            weights = self.blend.weights()
        exclude = set(seeds)
        if not filters.include_interacted:
            exclude |= heard
        for t in filters.exclude_track_ids:
            if t in snap.index:
                exclude.add(snap.index[t])
        cand = self._candidates(snap, user_f, user_t, query, weights, k + len(exclude))
        ranked = await self._rank(snap, cand, user_f, user_t, query, weights, k, filters, exclude)
        out = await self._explain(snap, ranked, qtext, seeds, items, conf, cold)
        return RecommendResult(out, cold, snap.version)

    async def similar(self, track_id: str, k: int, filters: Filters) -> RecommendResult:
        _check_id(track_id, "track_id", self.settings.max_id_chars)
        self._check_k(k)
        self._check_filters(filters)
        snap = self._ready()
        if track_id not in snap.index:
            raise NotFound(f"track_id: track {quote(track_id)} is not in the catalog")
        row = snap.index[track_id]
        c = snap.content[row]
        query = c / max(float(np.linalg.norm(c)), 1e-9)
        user_f = snap.item_factors[row]
        weights = np.array([self.blend.collaborative, 0.0, QUERY_WEIGHT, self.blend.popularity * PERSONAL_WITH_QUERY],
                           np.float32)
        exclude = {row} | {snap.index[t] for t in filters.exclude_track_ids if t in snap.index}
        zero = np.zeros(self.content_dim, np.float32)
        cand = self._candidates(snap, user_f, zero, query, weights, k + len(exclude))
        ranked = await self._rank(snap, cand, user_f, zero, query, weights, k, filters, exclude)
        out = await self._explain(snap, ranked, "", [row], np.zeros(0, np.int64), np.zeros(0), False)
        return RecommendResult(out, False, snap.version)

    async def _embed_query(self, text: str) -> np.ndarray:
        """EmbedText of a query, through a small LRU (the same words often come back: UI presets, paging)."""
        hit = self._query_cache.get(text)
        if hit is not None:
            self._query_cache.move_to_end(text)
            return hit
        vec = features.pad(await self.embed_text([text], "query_text"), self.content_dim)[0]
        vec.setflags(write=False)
        if self.settings.query_cache_size:
            self._query_cache[text] = vec
            while len(self._query_cache) > self.settings.query_cache_size:
                self._query_cache.popitem(last=False)
        return vec

    def _ready(self) -> S.Snapshot:
        snap = self.snapshot
        if snap is None:
            raise Unavailable("the recommender is still loading")
        return snap

    @staticmethod
    def _history(snap: S.Snapshot, history: Sequence[Event]) -> tuple[np.ndarray, np.ndarray, set[int]]:
        agg: dict[int, float] = {}
        heard: set[int] = set()
        for e in history:
            row = snap.index.get(e.track_id)
            if row is None:
                continue
            heard.add(row)
            agg[row] = agg.get(row, 0.0) + S.confidence(e.kind, e.value)
        pos = [(r, c) for r, c in agg.items() if c > 0]
        return (np.array([r for r, _ in pos], np.int64), np.array([c for _, c in pos], np.float64), heard)

    def _candidates_all(self, snap: S.Snapshot) -> np.ndarray | None:
        return None  # None: every item (the scorer reads the full arrays, no copy)

    def _candidates(self, snap: S.Snapshot, user_f: np.ndarray, user_t: np.ndarray, query: np.ndarray,
                    weights: np.ndarray, need: int) -> np.ndarray | None:
        if snap.ann is None:
            return None
        n = max(self.settings.ann_candidates, 4 * need)
        content = weights[1] * user_t + weights[2] * query
        found = snap.ann.search(weights[0] * user_f, content, n)
        return np.unique(np.concatenate([found, snap.popular, snap.unindexed]))

    async def _score(self, snap: S.Snapshot, user_f: np.ndarray, user_t: np.ndarray, query: np.ndarray,
                     weights: np.ndarray, cand: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if cand is None:
            item_f, item_c, prior = snap.item_factors, snap.content, snap.prior
        else:
            item_f, item_c, prior = snap.item_factors[cand], snap.content[cand], snap.prior[cand]
        out = await self.scorer.infer({
            "user_factors": user_f[None, :].astype(np.float32), "user_taste": user_t[None, :].astype(np.float32),
            "query": query[None, :].astype(np.float32), "weights": weights[None, :].astype(np.float32),
            "item_factors": item_f, "item_content": item_c, "item_prior": prior})
        return out["scores"][0], out["contributions"][0]

    def _allowed(self, snap: S.Snapshot, rows: np.ndarray, f: Filters) -> np.ndarray:
        ok = np.ones(len(rows), bool)
        if f.collections:
            ok &= np.isin(snap.collection[rows], f.collections)
        if f.time_signatures:
            ok &= np.isin(snap.time_signature[rows], f.time_signatures)
        if f.composers:
            wanted = [c.lower() for c in f.composers if c.strip()]
            ok &= np.array([any(w in c for w in wanted) for c in snap.composer[rows]], bool)
        if f.min_part_count:
            ok &= snap.parts[rows] >= f.min_part_count
        if f.max_part_count:
            ok &= snap.parts[rows] <= f.max_part_count
        return ok

    async def _rank(self, snap: S.Snapshot, cand: np.ndarray | None, user_f: np.ndarray, user_t: np.ndarray,
                    query: np.ndarray, weights: np.ndarray, k: int, f: Filters, exclude: set[int]
                    ) -> list[tuple[int, float, np.ndarray]]:
        scores, contrib = await self._score(snap, user_f, user_t, query, weights, cand)
        rows = np.arange(len(snap)) if cand is None else cand
        scores = scores.copy()
        if exclude:
            ex = np.array(sorted(exclude), np.int64)
            scores[np.isin(rows, ex)] = -np.inf
        filtered = bool(f.collections or f.time_signatures or f.composers or f.min_part_count or f.max_part_count)
        picked: list[int] = []
        # best first, a chunk at a time, filters checked on the chunk (cheap on large catalogs)
        order = np.argsort(-scores, kind="stable")
        for start in range(0, len(order), max(256, 4 * k)):
            chunk = order[start:start + max(256, 4 * k)]
            chunk = chunk[np.isfinite(scores[chunk])]
            if filtered and len(chunk):
                chunk = chunk[self._allowed(snap, rows[chunk], f)]
            picked.extend(chunk[:k - len(picked)].tolist())
            if len(picked) >= k:
                break
        return [(int(rows[j]), float(scores[j]), contrib[j]) for j in picked]

    async def _explain(self, snap: S.Snapshot, ranked: list[tuple[int, float, np.ndarray]], query_text: str,
                       seeds: Sequence[int], history: np.ndarray, conf: np.ndarray, cold: bool) -> list[Recommended]:
        ids = [snap.ids[r] for r in ranked_rows(ranked)]
        try:
            stored = await self._store(self.store.get_tracks, ids) if ids else {}
        except Unavailable:  # the store is down: answer from the snapshot (ids and titles), not with an error
            log.warning("store unavailable: recommendations carry ids and titles only")
            stored = {}
        out = []
        for (row, score, c) in ranked:
            tid = snap.ids[row]
            track = stored.get(tid) or CatalogTrack(track_id=tid, title=snap.titles[row])
            out.append(Recommended(track, score, self._reason(snap, row, c, query_text, seeds, history, cold,
                                                              track.description),
                                   tuple(float(x) for x in c)))
        return out

    def _reason(self, snap: S.Snapshot, row: int, c: np.ndarray, query_text: str, seeds: Sequence[int],
                history: np.ndarray, cold: bool, description: str = "") -> str:
        part = int(np.argmax(c))
        if float(c[part]) <= 1e-6:  # nothing to go on: no query, no history, no plays anywhere
            return "no listening data yet: from the catalog"
        name = M.COMPONENTS[part]
        if name == "query":
            if query_text:
                short = query_text if len(query_text) <= 48 else query_text[:45] + "..."
                what = _what(description, query_text)
                return f'matches "{short}"' + (f": {what}" if what else "")
            best = max(seeds, key=lambda s: float(snap.content[s] @ snap.content[row]))
            return f'sounds like "{snap.titles[best]}"'
        if name == "taste" and len(history):
            best = int(history[np.argmax(snap.content[history] @ snap.content[row])])
            return f'close to "{snap.titles[best]}", which you played'
        if name == "collaborative":
            if seeds and not len(history):
                return f'played by listeners of "{snap.titles[seeds[0]]}"'
            return "listeners with similar taste played it"
        plays = int(snap.plays[row])
        return (f"popular with listeners ({plays} plays)" if not cold else
                f"popular with listeners ({plays} plays); you are new here")

    # ------------------------------------------------------------------------------------------ interactions
    def _events(self, raw: Sequence[tuple[str, str, str, str, float, float | None]]) -> list[Event]:
        s = self.settings
        if not raw:
            raise InvalidArgument("events", "is empty: send at least one event")
        if len(raw) > s.max_events:
            raise InvalidArgument("events", f"{len(raw)} events, at most {s.max_events} per call")
        seen: dict[str, int] = {}
        now = time.time()
        out = []
        for i, (event_id, user_id, track_id, kind, rating, occurred_at) in enumerate(raw):
            _check_id(event_id, f"events[{i}].event_id", s.max_id_chars)
            if event_id in seen:
                raise InvalidArgument(f"events[{i}].event_id", f"duplicates events[{seen[event_id]}].event_id "
                                                                f"({quote(event_id)}) in the same batch")
            seen[event_id] = i
            _check_id(user_id, f"events[{i}].user_id", s.max_id_chars)
            _check_id(track_id, f"events[{i}].track_id", s.max_id_chars)
            if kind not in EVENT_KINDS:
                raise InvalidArgument(f"events[{i}].type", "must be PLAY, LIKE, SKIP or RATING")
            if not math.isfinite(rating):
                raise InvalidArgument(f"events[{i}].rating", f"must be a finite number, got {rating}")
            if kind == "rating" and not 0.0 <= rating <= 5.0:
                raise InvalidArgument(f"events[{i}].rating", f"must be between 0 and 5, got {rating}")
            if kind != "rating" and rating != 0.0:
                raise InvalidArgument(f"events[{i}].rating", "is only for INTERACTION_TYPE_RATING events")
            when = now if occurred_at is None else occurred_at
            if not math.isfinite(when) or when > now + 86400:
                raise InvalidArgument(f"events[{i}].occurred_at", "is more than a day in the future")
            out.append(Event(event_id, user_id, track_id, kind, float(rating), float(when)))
        return out

    async def record(self, raw: Sequence[tuple[str, str, str, str, float, float | None]]) -> tuple[int, int]:
        events = self._events(raw)
        recorded, duplicates = await self._store(self.store.record, events)
        self._new_events += recorded
        return recorded, duplicates

    # ------------------------------------------------------------------------------------------ catalog
    def _check_track(self, i: int, t: CatalogTrack) -> None:
        s = self.settings
        _check_id(t.track_id, f"tracks[{i}].track_id", s.max_id_chars)
        for name in ("title", "composer", "collection", "time_signature", "key", "origin", "description"):
            if len(getattr(t, name)) > s.max_text_chars:
                raise InvalidArgument(f"tracks[{i}].{name}", f"longer than {s.max_text_chars} characters")
        for name in ("part_count", "note_count", "ambitus_semitones"):
            if getattr(t, name) < 0:
                raise InvalidArgument(f"tracks[{i}].{name}", "must not be negative")
        if not (t.title.strip() or t.description.strip()):
            raise InvalidArgument(f"tracks[{i}].title", "a track needs a title or a description")
        if len(t.tags) > s.max_tags:
            raise InvalidArgument(f"tracks[{i}].tags", f"{len(t.tags)} tags; at most {s.max_tags}")
        for j, tag in enumerate(t.tags):
            if len(tag) > s.max_id_chars:
                raise InvalidArgument(f"tracks[{i}].tags[{j}]", f"longer than {s.max_id_chars} characters")

    async def upsert(self, tracks: Sequence[CatalogTrack]) -> tuple[int, int, int]:
        s = self.settings
        if not tracks:
            raise InvalidArgument("tracks", "is empty: send at least one track")
        if len(tracks) > s.max_upsert_tracks:
            raise InvalidArgument("tracks", f"{len(tracks)} tracks, at most {s.max_upsert_tracks} per call")
        seen: dict[str, int] = {}
        for i, t in enumerate(tracks):
            self._check_track(i, t)
            if t.track_id in seen:
                raise InvalidArgument(f"tracks[{i}].track_id", f"duplicates tracks[{seen[t.track_id]}].track_id")
            seen[t.track_id] = i
        rows = []
        for t in tracks:
            t.tags = list(t.tags) or title_tags(t.title)
            t.profile = t.description.strip() or profile_text(t)
            t.description = t.description.strip() or describe(t)
        # nlp-analysis: UNAVAILABLE if it is down (nothing is written then)
        vectors = await self.embed_text([t.profile for t in tracks], "tracks")
        content = features.content_vectors(vectors[:, :self.text_dim], [features.symbolic(t) for t in tracks])
        rows = [StoredTrack(t, c, "api") for t, c in zip(tracks, content)]
        async with self._catalog_lock:
            created, updated = await self._store(self.store.upsert_tracks, rows)
            snap = self._ready()
            self._install(await self.trainer.run(S.with_tracks, snap, rows, self._next_version()))
        return created, updated, self.snapshot.version if self.snapshot else 0

    async def get_track(self, track_id: str) -> tuple[CatalogTrack, int]:
        _check_id(track_id, "track_id", self.settings.max_id_chars)
        found = await self._store(self.store.get_tracks, [track_id])
        if track_id not in found:
            raise NotFound(f"track_id: track {quote(track_id)} is not in the catalog")
        counts = await self._store(self.store.interaction_counts, [track_id])
        return found[track_id], counts.get(track_id, 0)


def ranked_rows(ranked: list[tuple[int, float, np.ndarray]]) -> list[int]:
    return [r for r, _, _ in ranked]


def _what(description: str, query: str = "", limit: int = 90) -> str:
    """What a piece is, in the words of its description: the clauses that share a word with the query (else the
    first), from the part after "<title> by <composer>: " ("Irish traditional dance tune ...; it is a jig")."""
    text = description.split(" (key signature", 1)[0]
    text = text.rsplit(": ", 1)[-1].strip().rstrip(".")
    clauses = [c.strip() for c in text.split(", ") if c.strip()]
    words = {w for w in re.findall(r"[a-z]{4,}", query.lower())}
    hits = [c for c in clauses if words & set(re.findall(r"[a-z]{4,}", c.lower()))]
    what = "; ".join((hits or clauses[:1])[:2])
    return what if len(what) <= limit else what[: limit - 3] + "..."
