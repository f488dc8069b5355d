"""The durable store behind the recommender: the catalog (tracks and their content vectors) and the interaction
log. One interface, two engines:

* ``SqliteStore`` (default): embedded, WAL journal with ``synchronous=FULL``: a call returns only after its
  transaction is fsynced, so an acknowledged write survives ``kill -9`` and power loss of the process.
* ``PostgresStore``: for real deployments (several replicas share it); psycopg 3, one transaction per call.

Every write is one transaction: a batch is applied whole or not at all. Interactions are keyed by their
``event_id``: a retried batch finds its events already there and counts them as duplicates, once.
Calls are blocking; the pipeline runs them on its own single-thread executor.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import numpy as np

from maas_runtime.errors import FailedPrecondition, NotFound, quote
from music_recommender.catalog import CatalogTrack

log = logging.getLogger("maas.recommender.store")

EVENT_KINDS = ("play", "like", "skip", "rating")


@dataclass(frozen=True)
class Event:
    event_id: str
    user_id: str
    track_id: str
    kind: str          # one of EVENT_KINDS
    value: float       # the rating for "rating", else 0
    occurred_at: float  # unix seconds


@dataclass
class StoredTrack:
    track: CatalogTrack
    content: np.ndarray  # float32 content vector
    source: str          # "catalog" (the built model's seed) or "api" (UpsertTracks)


class Store(Protocol):
    def track_count(self) -> int: ...
    def seed_catalog(self, key: str, tracks: Sequence[CatalogTrack], content: np.ndarray) -> int: ...
    def upsert_tracks(self, rows: Sequence[StoredTrack]) -> tuple[int, int]: ...
    def get_tracks(self, track_ids: Sequence[str]) -> dict[str, CatalogTrack]: ...
    def all_tracks(self) -> Iterator[StoredTrack]: ...
    def record(self, events: Sequence[Event]) -> tuple[int, int]: ...
    def user_events(self, user_id: str, limit: int) -> list[Event]: ...
    def all_events(self) -> Iterator[Event]: ...
    def interaction_counts(self, track_ids: Sequence[str]) -> dict[str, int]: ...
    def event_count(self) -> int: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
  track_id TEXT PRIMARY KEY,
  doc TEXT NOT NULL,
  content {blob} NOT NULL,
  source TEXT NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
  event_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  track_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  occurred_at DOUBLE PRECISION NOT NULL,
  recorded_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS interactions_by_user ON interactions (user_id, occurred_at);
CREATE INDEX IF NOT EXISTS interactions_by_track ON interactions (track_id);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"""


def _doc(t: CatalogTrack) -> str:
    return json.dumps(t.as_dict(), ensure_ascii=False, separators=(",", ":"))


def _blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, np.float32).tobytes()


class _SqlStore:
    """The SQL both engines share; subclasses provide a connection, a placeholder and a lock."""

    ph = "?"
    blob_type = "BLOB"
    # errors that mean "the database cannot be reached or used right now" (answered UNAVAILABLE, retryable)
    transient: tuple[type[BaseException], ...] = ()

    def _conn(self) -> Any:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.ph)

    def _many(self, cur: Any, sql: str, rows: Iterable[tuple]) -> None:
        cur.executemany(self._q(sql), list(rows))

    def _existing(self, cur: Any, table: str, key: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            cur.execute(self._q(f"SELECT {key} FROM {table} WHERE {key} IN ({','.join('?' * len(chunk))})"), chunk)
            found.update(r[0] for r in cur.fetchall())
        return found

    # ---- catalog
    def track_count(self) -> int:
        with self._lock:
            cur = self._conn().cursor()
            cur.execute("SELECT COUNT(*) FROM tracks")
            n = int(cur.fetchone()[0])
            self._end_read()
        return n

    def seed_catalog(self, key: str, tracks: Sequence[CatalogTrack], content: np.ndarray) -> int:
        """Load the built catalog once per build key; tracks changed through the API are left alone."""
        with self._lock, self._tx() as cur:
            cur.execute(self._q("SELECT value FROM meta WHERE key = ?"), ("catalog_key",))
            row = cur.fetchone()
            if row is not None and row[0] == key:
                return 0
            now = time.time()
            self._many(cur, "INSERT INTO tracks (track_id, doc, content, source, updated_at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (track_id) DO UPDATE SET doc = excluded.doc, content = excluded.content, "
                            "updated_at = excluded.updated_at WHERE tracks.source = 'catalog'",
                       ((t.track_id, _doc(t), _blob(c), "catalog", now) for t, c in zip(tracks, content)))
            self._many(cur, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                            "excluded.value", [("catalog_key", key)])
            return len(tracks)

    def upsert_tracks(self, rows: Sequence[StoredTrack]) -> tuple[int, int]:
        with self._lock, self._tx() as cur:
            existing = self._existing(cur, "tracks", "track_id", [r.track.track_id for r in rows])
            now = time.time()
            self._many(cur, "INSERT INTO tracks (track_id, doc, content, source, updated_at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (track_id) DO UPDATE SET doc = excluded.doc, content = excluded.content, "
                            "source = excluded.source, updated_at = excluded.updated_at",
                       ((r.track.track_id, _doc(r.track), _blob(r.content), r.source, now) for r in rows))
        created = len({r.track.track_id for r in rows} - existing)
        return created, len(rows) - created

    def get_tracks(self, track_ids: Sequence[str]) -> dict[str, CatalogTrack]:
        out: dict[str, CatalogTrack] = {}
        ids = list(dict.fromkeys(track_ids))
        with self._lock:
            cur = self._conn().cursor()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                cur.execute(self._q(f"SELECT track_id, doc FROM tracks WHERE track_id IN ({','.join('?' * len(chunk))})"),
                            chunk)
                for tid, doc in cur.fetchall():
                    out[tid] = CatalogTrack.from_dict(json.loads(doc))
            self._end_read()
        return out

    def all_tracks(self) -> Iterator[StoredTrack]:
        with self._lock:
            cur = self._conn().cursor()
            cur.execute("SELECT doc, content, source FROM tracks ORDER BY track_id")
            rows = cur.fetchall()
            self._end_read()
        for doc, content, source in rows:
            yield StoredTrack(CatalogTrack.from_dict(json.loads(doc)), np.frombuffer(bytes(content), np.float32), source)

    # ---- interactions
    def record(self, events: Sequence[Event]) -> tuple[int, int]:
        """Append a batch in one transaction: every event's track must exist (else NOT_FOUND, nothing written);
        events whose id is already stored are duplicates (a retried batch) and are not counted again."""
        with self._lock, self._tx() as cur:
            known = self._existing(cur, "tracks", "track_id", [e.track_id for e in events])
            missing = [i for i, e in enumerate(events) if e.track_id not in known]
            if missing:
                i = missing[0]
                raise NotFound(f"events[{i}].track_id: track {quote(events[i].track_id)} is not in the catalog"
                               + (f" (and {len(missing) - 1} more events)" if len(missing) > 1 else "")
                               + "; nothing was recorded")
            dup = self._existing(cur, "interactions", "event_id", [e.event_id for e in events])
            fresh = [e for e in events if e.event_id not in dup]
            now = time.time()
            self._many(cur, "INSERT INTO interactions (event_id, user_id, track_id, kind, value, occurred_at, "
                            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                       ((e.event_id, e.user_id, e.track_id, e.kind, e.value, e.occurred_at, now) for e in fresh))
        return len(fresh), len(events) - len(fresh)

    def user_events(self, user_id: str, limit: int) -> list[Event]:
        with self._lock:
            cur = self._conn().cursor()
            cur.execute(self._q("SELECT event_id, user_id, track_id, kind, value, occurred_at FROM interactions "
                                "WHERE user_id = ? ORDER BY occurred_at DESC LIMIT ?"), (user_id, limit))
            rows = cur.fetchall()
            self._end_read()
        return [Event(*r) for r in rows]

    def all_events(self) -> Iterator[Event]:
        with self._lock:
            cur = self._conn().cursor()
            cur.execute("SELECT event_id, user_id, track_id, kind, value, occurred_at FROM interactions")
            rows = cur.fetchall()
            self._end_read()
        return (Event(*r) for r in rows)

    def interaction_counts(self, track_ids: Sequence[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(track_ids))
        if not ids:
            return {}
        with self._lock:
            cur = self._conn().cursor()
            cur.execute(self._q(f"SELECT track_id, COUNT(*) FROM interactions WHERE track_id IN "
                                f"({','.join('?' * len(ids))}) GROUP BY track_id"), ids)
            rows = cur.fetchall()
            self._end_read()
        return {r[0]: int(r[1]) for r in rows}

    def event_count(self) -> int:
        with self._lock:
            cur = self._conn().cursor()
            cur.execute("SELECT COUNT(*) FROM interactions")
            n = int(cur.fetchone()[0])
            self._end_read()
        return n


class _Tx:
    def __init__(self, conn: Any, begin: str | None) -> None:
        self.conn, self.begin = conn, begin

    def __enter__(self) -> Any:
        cur = self.conn.cursor()
        if self.begin:
            cur.execute(self.begin)
        self.cur = cur
        return cur

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.conn.rollback()
            return
        try:
            self.conn.commit()  # returns after the fsync: only then is the caller answered
        except BaseException:
            _rollback_quietly(self.conn.rollback)  # a failed COMMIT leaves the transaction open: end it
            raise


def _rollback_quietly(rollback: Any) -> None:
    try:
        rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; the COMMIT's own error is what the caller gets
        log.warning("rollback after a failed commit failed too", exc_info=True)


class SqliteStore(_SqlStore):
    transient = (sqlite3.OperationalError,)  # locked by another process, disk full, I/O error

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: acknowledged = durable
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA.format(blob="BLOB"))

    def _conn(self) -> sqlite3.Connection:
        return self._db

    def _tx(self) -> Any:
        db = self._db

        class Tx(_Tx):
            def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
                if exc_type is not None:
                    db.execute("ROLLBACK")
                    return
                try:
                    db.execute("COMMIT")
                except BaseException:
                    _rollback_quietly(lambda: db.execute("ROLLBACK"))  # else every later BEGIN fails
                    raise

        return Tx(db, "BEGIN IMMEDIATE")

    def _end_read(self) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresStore(_SqlStore):
    ph = "%s"

    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self.transient = (psycopg.OperationalError, psycopg.InterfaceError)
        self.url = url
        self._lock = threading.RLock()
        try:
            self._db = psycopg.connect(url, autocommit=False)
        except psycopg.OperationalError as e:
            raise FailedPrecondition(f"cannot connect to PostgreSQL ({e})") from e
        with self._db.cursor() as cur:
            cur.execute(_SCHEMA.format(blob="BYTEA"))
        self._db.commit()

    def _conn(self) -> Any:
        if self._db.closed or self._db.broken:  # the server restarted or the network dropped: connect again
            self._db = self._psycopg.connect(self.url, autocommit=False)
        elif self._db.info.transaction_status == self._psycopg.pq.TransactionStatus.INERROR:
            self._db.rollback()  # a read that failed half-way left its transaction aborted
        return self._db

    def _tx(self) -> _Tx:
        return _Tx(self._conn(), None)

    def _end_read(self) -> None:
        self._db.rollback()  # close the implicit read transaction (no idle-in-transaction sessions)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(url: str) -> SqliteStore | PostgresStore:
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``postgresql://user@host:port/db``."""
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url[len("sqlite:///"):]))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ValueError(f"store URL {url!r}: expected sqlite:///<path> or postgresql://...")
