"""The store interface against both engines: embedded SQLite and a real PostgreSQL server."""

from __future__ import annotations

import numpy as np
import pytest

from maas_runtime.errors import NotFound
from music_recommender.catalog import CatalogTrack
from music_recommender.store import Event, StoredTrack, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/store.sqlite3")
    else:
        url = request.getfixturevalue("postgres_url")
        s = open_store(url)
        with s._lock:  # a clean slate per test on the shared server
            cur = s._conn().cursor()
            cur.execute("TRUNCATE tracks, interactions, meta")
            s._conn().commit()
    yield s
    s.close()


def track(i: int, **kw) -> StoredTrack:
    return StoredTrack(CatalogTrack(track_id=f"t{i}", title=f"Piece {i}", **kw),
                       np.full(4, i, np.float32), "api")


def ev(event_id: str, user: str = "u", track_id: str = "t1", kind: str = "play", t: float = 1.0) -> Event:
    return Event(event_id, user, track_id, kind, 0.0, t)


def test_tracks_round_trip_and_count_created_and_updated(store):
    assert store.upsert_tracks([track(1, composer="Bach", tags=["jig"]), track(2)]) == (2, 0)
    assert store.upsert_tracks([track(2, composer="Haydn"), track(3)]) == (1, 1)
    got = store.get_tracks(["t1", "t2", "missing"])
    assert set(got) == {"t1", "t2"} and got["t1"].tags == ["jig"] and got["t2"].composer == "Haydn"
    rows = {r.track.track_id: r for r in store.all_tracks()}
    assert store.track_count() == 3 and np.array_equal(rows["t3"].content, np.full(4, 3, np.float32))


def test_events_are_idempotent_by_id_and_batches_atomic(store):
    store.upsert_tracks([track(1), track(2)])
    assert store.record([ev("a"), ev("b", track_id="t2")]) == (2, 0)
    assert store.record([ev("a"), ev("b", track_id="t2"), ev("c")]) == (1, 2)
    with pytest.raises(NotFound, match=r"events\[1\]\.track_id"):
        store.record([ev("d"), ev("e", track_id="nope")])
    assert store.event_count() == 3, "the rejected batch must leave nothing behind"
    assert store.interaction_counts(["t1", "t2"]) == {"t1": 2, "t2": 1}


def test_user_events_newest_first(store):
    store.upsert_tracks([track(1)])
    store.record([ev(f"e{i}", t=float(i)) for i in range(5)] + [ev("x", user="other")])
    got = store.user_events("u", 3)
    assert [e.event_id for e in got] == ["e4", "e3", "e2"] and store.user_events("nobody", 3) == []


def test_the_built_catalog_is_seeded_once_per_build_and_spares_api_edits(store):
    tracks = [CatalogTrack(track_id=f"t{i}", title=f"Seed {i}") for i in range(3)]
    content = np.zeros((3, 4), np.float32)
    assert store.seed_catalog("key1", tracks, content) == 3
    assert store.seed_catalog("key1", tracks, content) == 0
    store.upsert_tracks([track(1)])  # edited through the API
    renamed = [CatalogTrack(track_id=f"t{i}", title=f"Renamed {i}") for i in range(3)]
    assert store.seed_catalog("key2", renamed, content) == 3
    got = store.get_tracks(["t0", "t1"])
    assert got["t0"].title == "Renamed 0" and got["t1"].title == "Piece 1"


async def test_a_database_outage_is_unavailable_and_the_service_recovers(start_app, postgres_cluster):
    import grpc

    from maas.music.v1 import recommender_pb2 as pb
    from maas.music.v1 import recommender_pb2_grpc

    track = "m21:bach/bwv66.6.mxl"
    app, address = await start_app(store_url=postgres_cluster.url)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
        batch = lambda i: pb.RecordInteractionsRequest(events=[pb.InteractionEvent(  # noqa: E731
            event_id=f"outage-{i}", user_id="ana", track_id=track, type=pb.INTERACTION_TYPE_PLAY)])
        assert (await stub.RecordInteractions(batch(1))).recorded == 1
        postgres_cluster.stop()
        for call in (stub.RecordInteractions(batch(2)), stub.GetTrack(pb.GetTrackRequest(track_id=track)),
                     stub.Recommend(pb.RecommendRequest(user_id="ana", k=3)),  # needs the history
                     stub.RetrainModel(pb.RetrainModelRequest())):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
        # what needs no database still answers, from the serving snapshot (ids and titles)
        similar = (await stub.SimilarTracks(pb.SimilarTracksRequest(track_id=track, k=2))).recommendations
        assert len(similar) == 2 and all(r.track.title and r.reason for r in similar)
        postgres_cluster.start()
        assert (await stub.RecordInteractions(batch(2))).recorded == 1
        assert (await stub.GetTrack(pb.GetTrackRequest(track_id=track))).interaction_count == 2


def test_a_failed_commit_is_rolled_back_and_the_store_goes_on(tmp_path):
    """A COMMIT that fails (disk I/O error) used to leave its transaction open, so every later write failed with
    "cannot start a transaction within a transaction"; now it is rolled back, and the next write lands."""
    import sqlite3

    s = open_store(f"sqlite:///{tmp_path}/store.sqlite3")
    real = s._db

    class CommitFailsOnce:
        failed = False

        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql == "COMMIT" and not self.failed:
                self.failed = True
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

    s._db = CommitFailsOnce()
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        s.upsert_tracks([track(1)])
    assert s.upsert_tracks([track(2)]) == (1, 0)
    assert s.track_count() == 1 and set(s.get_tracks(["t1", "t2"])) == {"t2"}
    s.close()
