"""maas.music.v1.MusicRecommender through a real aio server, a real nlp-analysis (EmbedText) and the built model."""

from __future__ import annotations

import asyncio
import math
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from maas.music.v1 import recommender_pb2 as pb
from maas.music.v1 import recommender_pb2_grpc

IRISH = {"oneills1850", "ryansMammoth", "nottingham-dataset", "airdsAirs", "miscFolk"}
CHORALE = "m21:bach/bwv66.6.mxl"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def event(user: str, track: str, kind=pb.INTERACTION_TYPE_LIKE, rating: float = 0.0, event_id: str | None = None):
    return pb.InteractionEvent(event_id=event_id or uid("ev"), user_id=user, track_id=track, type=kind,
                               rating=rating)


async def expect(code: grpc.StatusCode, call, field: str | None = None) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = info.value
    assert err.code() == code, err.details()
    if field is not None:
        status = rpc_status.from_call(err)
        bad = error_details_pb2.BadRequest()
        assert status is not None and status.details[0].Unpack(bad)
        assert [v.field for v in bad.field_violations] == [field], err.details()
    return err.details()


async def test_query_text_finds_matching_pieces_with_scores_and_reasons(stub):
    reply = await stub.Recommend(pb.RecommendRequest(query_text="a lively irish jig", k=5))
    recs = reply.recommendations
    assert len(recs) == 5
    assert all(r.track.collection in IRISH and "jig" in r.track.tags for r in recs), [r.track.title for r in recs]
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert all(r.reason.startswith('matches "a lively irish jig": ') for r in recs)
    # what the piece is, in the words of its description that the query shares ("Irish ...; lively dance music")
    assert all({"irish", "lively", "jig"} & set(r.reason.split(": ", 1)[1].lower().replace(";", " ").split())
               for r in recs), [r.reason for r in recs]
    assert reply.model.name == "music-recommender" and reply.model.build_key
    choir = await stub.Recommend(pb.RecommendRequest(query_text="sacred renaissance mass for choir", k=5))
    assert {r.track.collection for r in choir.recommendations} <= {"palestrina", "josquin", "trecento"}


async def test_similar_tracks_of_a_bach_chorale_are_chorales(stub):
    reply = await stub.SimilarTracks(pb.SimilarTracksRequest(track_id=CHORALE, k=8))
    tracks = [r.track for r in reply.recommendations]
    assert len(tracks) == 8 and CHORALE not in {t.track_id for t in tracks}
    assert all(t.collection == "bach" for t in tracks)
    assert all(r.reason for r in reply.recommendations)


async def test_filters_restrict_the_answer(stub):
    f = pb.RecommendationFilter(collections=["essenFolksong"], time_signatures=["3/4"])
    reply = await stub.Recommend(pb.RecommendRequest(query_text="a dance", k=7, filter=f))
    assert len(reply.recommendations) == 7
    assert all(r.track.collection == "essenFolksong" and r.track.time_signature == "3/4"
               for r in reply.recommendations)
    four = await stub.Recommend(pb.RecommendRequest(query_text="choir", k=5, filter=pb.RecommendationFilter(
        min_part_count=5, composers=["palestrina"])))
    assert all(r.track.part_count >= 5 and "palestrina" in r.track.composer.lower() for r in four.recommendations)


async def test_a_retried_batch_is_counted_once(stub):
    user = uid("u")
    before = (await stub.GetTrack(pb.GetTrackRequest(track_id=CHORALE))).interaction_count
    batch = pb.RecordInteractionsRequest(events=[event(user, CHORALE, pb.INTERACTION_TYPE_PLAY),
                                                 event(user, CHORALE, pb.INTERACTION_TYPE_RATING, 4.5)])
    first = await stub.RecordInteractions(batch)
    again = await stub.RecordInteractions(batch)
    assert (first.recorded, first.duplicates) == (2, 0)
    assert (again.recorded, again.duplicates) == (0, 2)
    after = await stub.GetTrack(pb.GetTrackRequest(track_id=CHORALE))
    assert after.interaction_count == before + 2 and after.track.composer == "J.S. Bach"


async def test_a_listener_gets_tracks_like_theirs_and_not_the_ones_they_had(stub):
    user = uid("u")
    liked = [r.track.track_id for r in (await stub.SimilarTracks(pb.SimilarTracksRequest(
        track_id=CHORALE, k=3))).recommendations] + [CHORALE]
    await stub.RecordInteractions(pb.RecordInteractionsRequest(events=[event(user, t) for t in liked]))
    reply = await stub.Recommend(pb.RecommendRequest(user_id=user, k=10))
    assert not reply.cold_start
    got = [r.track for r in reply.recommendations]
    assert not {t.track_id for t in got} & set(liked)
    assert sum(t.collection == "bach" for t in got) >= 8
    assert any("which you played" in r.reason for r in reply.recommendations)
    again = await stub.Recommend(pb.RecommendRequest(user_id=user, k=3, filter=pb.RecommendationFilter(
        include_interacted=True)))
    assert {r.track.track_id for r in again.recommendations} & set(liked)


async def test_an_unknown_listener_gets_the_cold_start_answer(stub):
    reply = await stub.Recommend(pb.RecommendRequest(user_id=uid("new"), k=5))
    assert reply.cold_start and len(reply.recommendations) == 5
    with_query = await stub.Recommend(pb.RecommendRequest(user_id=uid("new"), query_text="a hornpipe", k=5))
    assert with_query.cold_start and all("hornpipe" in r.track.tags for r in with_query.recommendations)


async def test_retrain_learns_co_listening_and_swaps_the_snapshot(stub):
    """Listeners who like A also like B (two unrelated pieces); after a retrain, a new listener of A gets B from
    the collaborative part."""
    a, b = "m21:joplin/maple_leaf_rag.mxl", "m21:palestrina/Agnus_01.krn"
    crowd = [event(uid("fan"), t) for _ in range(12) for t in (a, b)]
    for i in range(0, len(crowd), 2):  # each fan likes both
        crowd[i + 1].user_id = crowd[i].user_id
    await stub.RecordInteractions(pb.RecordInteractionsRequest(events=crowd))
    before = await stub.Recommend(pb.RecommendRequest(user_id="nobody-yet", k=1))
    done = await stub.RetrainModel(pb.RetrainModelRequest())
    assert done.snapshot_version > before.snapshot_version and done.interactions >= 24 and done.tracks > 14000
    listener = uid("u")
    await stub.RecordInteractions(pb.RecordInteractionsRequest(events=[event(listener, a)]))
    reply = await stub.Recommend(pb.RecommendRequest(user_id=listener, k=5))
    assert reply.snapshot_version == done.snapshot_version
    top = {r.track.track_id: r for r in reply.recommendations}
    assert b in top and top[b].collaborative > 0, [(r.track.track_id, r.reason) for r in reply.recommendations]


async def test_retraining_never_interrupts_serving(stub):
    async def ask():
        return await stub.Recommend(pb.RecommendRequest(query_text="a march", k=5))

    retrain = asyncio.ensure_future(stub.RetrainModel(pb.RetrainModelRequest()))
    answers = [await ask() for _ in range(10)]
    versions = [a.snapshot_version for a in answers] + [(await retrain).snapshot_version]
    assert all(len(a.recommendations) == 5 for a in answers)
    assert versions == sorted(versions)


async def test_new_tracks_are_recommendable_at_once(stub):
    tid = uid("new:track")
    reply = await stub.UpsertTracks(pb.UpsertTracksRequest(tracks=[pb.CatalogTrack(
        track_id=tid, title="Midnight Rain", composer="A. Nonymous", part_count=1,
        description="a slow, quiet solo piano nocturne for late-night studying")]))
    assert (reply.created, reply.updated) == (1, 0)
    got = await stub.GetTrack(pb.GetTrackRequest(track_id=tid))
    assert got.track.title == "Midnight Rain" and got.interaction_count == 0
    recs = await stub.Recommend(pb.RecommendRequest(query_text="quiet piano nocturne for studying at night", k=3))
    assert recs.recommendations[0].track.track_id == tid
    updated = await stub.UpsertTracks(pb.UpsertTracksRequest(tracks=[pb.CatalogTrack(
        track_id=tid, title="Midnight Rain", description="a loud brass march")]))
    assert (updated.created, updated.updated) == (0, 1)
    march = await stub.Recommend(pb.RecommendRequest(query_text="a loud brass march", k=3))
    assert tid in {r.track.track_id for r in march.recommendations}
    similar = await stub.SimilarTracks(pb.SimilarTracksRequest(track_id=tid, k=2))
    assert len(similar.recommendations) == 2


# ------------------------------------------------------------------------------------------------ bad input


async def test_bad_requests_get_precise_statuses(stub, recommender):
    INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    rec = stub.Recommend
    await expect(INVALID, rec(pb.RecommendRequest(query_text="jig", k=0)), "k")
    await expect(INVALID, rec(pb.RecommendRequest(query_text="jig", k=-3)), "k")
    await expect(INVALID, rec(pb.RecommendRequest(query_text="jig", k=101)), "k")
    await expect(INVALID, rec(pb.RecommendRequest(k=5)), "user_id")
    await expect(INVALID, rec(pb.RecommendRequest(query_text="x" * 1001, k=5)), "query_text")
    await expect(INVALID, rec(pb.RecommendRequest(query_text="jig", k=5, filter=pb.RecommendationFilter(
        min_part_count=4, max_part_count=2))), "filter.max_part_count")
    assert "nope" in await expect(NOT_FOUND, rec(pb.RecommendRequest(seed_track_ids=[CHORALE, "nope"], k=5)))
    await expect(NOT_FOUND, stub.SimilarTracks(pb.SimilarTracksRequest(track_id="nope", k=5)))
    await expect(INVALID, stub.SimilarTracks(pb.SimilarTracksRequest(track_id=CHORALE, k=0)), "k")
    await expect(NOT_FOUND, stub.GetTrack(pb.GetTrackRequest(track_id="nope")))
    await expect(INVALID, stub.GetTrack(pb.GetTrackRequest(track_id="")), "track_id")
    await expect(INVALID, stub.UpsertTracks(pb.UpsertTracksRequest()), "tracks")
    await expect(INVALID, stub.UpsertTracks(pb.UpsertTracksRequest(tracks=[pb.CatalogTrack(title="x")])),
                 "tracks[0].track_id")
    await expect(INVALID, stub.UpsertTracks(pb.UpsertTracksRequest(
        tracks=[pb.CatalogTrack(track_id="a", title="x")] * 2)), "tracks[1].track_id")
    # filters and tags are bounded: a list of 101 values, a value or a tag over 200 characters, 33 tags
    await expect(INVALID, rec(pb.RecommendRequest(query_text="jig", k=5, filter=pb.RecommendationFilter(
        collections=["bach"] * 101))), "filter.collections")
    await expect(INVALID, rec(pb.RecommendRequest(query_text="jig", k=5, filter=pb.RecommendationFilter(
        exclude_track_ids=["x" * 201]))), "filter.exclude_track_ids[0]")
    await expect(INVALID, stub.UpsertTracks(pb.UpsertTracksRequest(
        tracks=[pb.CatalogTrack(track_id="a", title="x", tags=["t"] * 33)])), "tracks[0].tags")
    await expect(INVALID, stub.UpsertTracks(pb.UpsertTracksRequest(
        tracks=[pb.CatalogTrack(track_id="a", title="x", tags=["t" * 201])])), "tracks[0].tags[0]")
    # the server keeps serving
    assert len((await rec(pb.RecommendRequest(query_text="jig", k=2))).recommendations) == 2
    async with grpc.aio.insecure_channel(recommender[1]) as ch:
        health = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_bad_event_batches_are_rejected_whole(stub):
    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    record = lambda *events: stub.RecordInteractions(pb.RecordInteractionsRequest(events=list(events)))  # noqa: E731
    user = uid("u")
    track = "m21:bach/bwv1.6.mxl"
    before = (await stub.GetTrack(pb.GetTrackRequest(track_id=track))).interaction_count
    await expect(INVALID, record(), "events")
    same = uid("ev")
    await expect(INVALID, record(event(user, track, event_id=same), event(user, track, event_id=same)),
                 "events[1].event_id")
    for bad in (math.nan, math.inf, -math.inf):
        await expect(INVALID, record(event(user, track), event(user, track, pb.INTERACTION_TYPE_RATING, bad)),
                     "events[1].rating")
    await expect(INVALID, record(event(user, track, pb.INTERACTION_TYPE_RATING, 7)), "events[0].rating")
    await expect(INVALID, record(event(user, track, pb.INTERACTION_TYPE_PLAY, 3)), "events[0].rating")
    await expect(INVALID, record(event(user, track, pb.INTERACTION_TYPE_UNSPECIFIED)), "events[0].type")
    await expect(INVALID, record(event("", track)), "events[0].user_id")
    await expect(INVALID, record(pb.InteractionEvent(user_id=user, track_id=track, type=1)), "events[0].event_id")
    details = await expect(grpc.StatusCode.NOT_FOUND, record(event(user, track), event(user, "m21:no/such.mxl")))
    assert "events[1].track_id" in details
    await expect(INVALID, record(*[event(user, track) for _ in range(1001)]), "events")
    after = await stub.GetTrack(pb.GetTrackRequest(track_id=track))
    assert after.interaction_count == before, "a rejected batch must leave nothing behind"
    assert (await stub.Recommend(pb.RecommendRequest(user_id=user, k=3))).cold_start


async def test_nlp_down_is_unavailable_and_writes_nothing(start_app):
    app, address = await start_app(nlp_addr="127.0.0.1:1", nlp_timeout_s=2)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
        await expect(grpc.StatusCode.UNAVAILABLE, stub.Recommend(pb.RecommendRequest(query_text="jig", k=3)))
        await expect(grpc.StatusCode.UNAVAILABLE, stub.UpsertTracks(pb.UpsertTracksRequest(
            tracks=[pb.CatalogTrack(track_id="t-down", title="x")])))
        await expect(grpc.StatusCode.NOT_FOUND, stub.GetTrack(pb.GetTrackRequest(track_id="t-down")))
        # what does not need nlp-analysis still works
        reply = await stub.SimilarTracks(pb.SimilarTracksRequest(track_id=CHORALE, k=3))
        assert len(reply.recommendations) == 3


async def test_scheduled_retraining_picks_up_new_events(start_app):
    app, address = await start_app(retrain_interval_s=0.5)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
        first = (await stub.Recommend(pb.RecommendRequest(query_text="a jig", k=1))).snapshot_version
        await asyncio.sleep(1.2)
        idle = (await stub.Recommend(pb.RecommendRequest(query_text="a jig", k=1))).snapshot_version
        assert idle == first, "no new events: no retrain"
        await stub.RecordInteractions(pb.RecordInteractionsRequest(events=[event(uid("u"), CHORALE)]))
        for _ in range(40):
            await asyncio.sleep(0.25)
            now = (await stub.Recommend(pb.RecommendRequest(query_text="a jig", k=1))).snapshot_version
            if now > first:
                break
        assert now > first


async def test_a_large_upsert_is_embedded_in_chunks(stub):
    tracks = [pb.CatalogTrack(track_id=uid("bulk"), title=f"Bulk piece {i}", description=f"a gentle lullaby number {i}")
              for i in range(100)]
    reply = await stub.UpsertTracks(pb.UpsertTracksRequest(tracks=tracks))
    assert reply.created == 100
    got = await stub.GetTrack(pb.GetTrackRequest(track_id=tracks[99].track_id))
    assert got.track.description == "a gentle lullaby number 99"


async def test_a_repeated_query_is_embedded_once(recommender, stub):
    pipeline = recommender[0].pipeline
    calls = []
    real = pipeline.embed_text

    async def counting(texts, field="query_text"):
        calls.append(list(texts))
        return await real(texts, field)

    pipeline.embed_text = counting
    try:
        text = f"a cheerful hornpipe {uuid.uuid4().hex[:6]}"
        first = await stub.Recommend(pb.RecommendRequest(query_text=text, k=5))
        second = await stub.Recommend(pb.RecommendRequest(query_text=text, k=5))
    finally:
        pipeline.embed_text = real
    assert calls == [[text]]
    assert [r.track.track_id for r in first.recommendations] == [r.track.track_id for r in second.recommendations]


async def test_the_channel_to_nlp_analysis_carries_the_internal_token(repository):
    """With the suite's shared token on, nlp-analysis answers the recommender's embedder (which sends it) and
    refuses a caller without it."""
    from nlp_analysis.app import NlpApp
    from nlp_analysis.settings import NlpSettings
    from music_recommender.nlp_client import NlpEmbedder
    from maas_runtime.errors import Unavailable

    app = NlpApp(NlpSettings(host="127.0.0.1", port=0, model_repository=repository, log_format="text",
                             internal_token="hop-secret"))
    port = await app.start()
    try:
        trusted = NlpEmbedder(f"127.0.0.1:{port}", 30, internal_token="hop-secret")
        vectors = await trusted(["a calm piece for studying"])
        assert vectors.shape[0] == 1 and vectors.shape[1] >= 64
        stranger = NlpEmbedder(f"127.0.0.1:{port}", 30)
        with pytest.raises(Unavailable, match="UNAUTHENTICATED"):
            await stranger(["a calm piece for studying"])
        await trusted.close()
        await stranger.close()
    finally:
        await app.stop()
