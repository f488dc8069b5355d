"""The Python SDK's service classes (``client.textgen``, ``client.music``, ``client.recommender``,
``client.inference``), blocking and asyncio, against the real suite through the gateway; and its pieces that need
no server (KServe tensor encoding, request builders)."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
import numpy as np
import pytest

from maas_client import AsyncClient, Client, MaasError
from maas_client import tensors
from maas_client.services import SERVICES, MusicRecommender, chat, interaction

ROOT = Path(__file__).resolve().parents[2]
BACH = "m21:bach/bwv66.6.mxl"


def recommender_enabled() -> bool:
    from maas_cluster.config import load

    return any(s.name == "music-recommender" for s in load(ROOT / "cluster.toml").enabled())


# ---- no server -----------------------------------------------------------------------------------------------
def test_every_service_of_the_suite_has_a_client_attribute():
    assert set(SERVICES) == {"nlp", "textgen", "music", "recommender", "inference"}
    with Client("127.0.0.1:1") as maas:  # nothing listens: attributes exist without a call
        for attribute in SERVICES:
            assert hasattr(maas, attribute)


def test_tensors_round_trip_numbers_and_bytes():
    request = tensors.infer_request("m", {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": [[1, 2]],
                                          "s": np.array(["héllo", "a"], dtype=object)}, {"ids": "INT64"}, ["y"])
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [
        ("x", "FP32", [2, 3]), ("ids", "INT64", [1, 2]), ("s", "BYTES", [2])]
    assert request.raw_input_contents[1] == np.array([1, 2], "<i8").tobytes()
    assert request.raw_input_contents[2] == b"\x06\x00\x00\x00h\xc3\xa9llo\x01\x00\x00\x00a"
    from inference import grpc_service_pb2 as pb

    response = pb.ModelInferResponse(outputs=[pb.ModelInferResponse.InferOutputTensor(name=i.name, datatype=i.datatype,
                                                                                        shape=i.shape)
                                              for i in request.inputs],
                                     raw_output_contents=request.raw_input_contents)
    out = tensors.outputs(response)
    assert np.array_equal(out["x"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert out["ids"].dtype == np.int64 and out["s"].tolist() == ["héllo".encode(), b"a"]


def test_request_builders():
    assert [(m.role, m.content) for m in chat([("system", "be brief"), {"role": "user", "content": "hi"}])] == [
        ("system", "be brief"), ("user", "hi")]
    e = interaction("alice", BACH, "rating", rating=4.5, occurred_at=1_700_000_000.5)
    assert e.type == MusicRecommender.InteractionType.Value("INTERACTION_TYPE_RATING") and e.rating == 4.5
    assert e.event_id and e.occurred_at.seconds == 1_700_000_000 and e.occurred_at.nanos == 500_000_000


# ---- blocking ------------------------------------------------------------------------------------------------
def test_sync_text_generation_stream_equals_unary_and_can_be_cancelled(suite_gateway: str):
    with Client(suite_gateway, timeout=120) as maas:
        settings = dict(max_new_tokens=16, temperature=0.8, seed=7)
        whole = maas.textgen.generate("The old lighthouse", **settings)
        events = list(maas.textgen.generate_stream("The old lighthouse", **settings))
        assert len(events) > 1 and "".join(e.text for e in events) == whole.text
        assert events[0].seed == 7 and events[-1].finish_reason == whole.finish_reason
        for _ in maas.textgen.generate_stream("Count to one thousand:", max_new_tokens=500):
            break  # leaving the loop cancels the call; the client stays usable
        assert maas.textgen.count_tokens(messages=[("user", "hi")]).token_count > \
            maas.textgen.count_tokens("hi").token_count
        assert maas.textgen.score("The cat sat on the mat.").perplexity > 1
        with pytest.raises(MaasError) as bad:
            maas.textgen.generate("x", temperature=-1.0)
        assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in bad.value.field_violations] == ["temperature"]


def test_sync_music_stream_then_unary_give_the_same_piece_for_a_seed(suite_gateway: str):
    with Client(suite_gateway, timeout=300) as maas:
        styles = {s.name: s for s in maas.music.list_styles().styles}
        assert set(styles) == {"chorale", "folk", "fiddle", "renaissance"}
        kinds, done = [], None
        for event in maas.music.compose_stream("fiddle", key="G major", bars=2, seed=11):
            kinds.append(event.WhichOneof("event"))
            done = event.done if kinds[-1] == "done" else done
        assert kinds[0] == "plan" and kinds[-1] == "done" and "notes" in kinds
        assert done is not None and done.plan.key == "G major" and done.plan.seed == 11 and done.bars == 2
        again = maas.music.compose("fiddle", key="G major", bars=2, seed=11)
        assert again.midi == done.midi and len(again.notes) == len(done.notes)
        with pytest.raises(MaasError) as bad:
            maas.music.compose("fiddle", tempo_bpm=1000)
        assert [v.field for v in bad.value.field_violations] == ["tempo_bpm"]


@pytest.mark.skipif(not recommender_enabled(), reason="music-recommender is not enabled in cluster.toml")
def test_sync_recommender(suite_gateway: str):
    with Client(suite_gateway) as maas:
        user = f"sdk-{uuid.uuid4().hex[:8]}"
        reply = maas.recommender.recommend(query_text="a cheerful fiddle reel for dancing", k=4,
                                           filter={"exclude_track_ids": [BACH]})
        assert len(reply.recommendations) == 4 and reply.snapshot_version > 0
        events = [interaction(user, BACH, "like"), {"user_id": user, "track_id": BACH, "type": "play"}]
        assert maas.recommender.record_interactions(events).recorded == 2
        assert maas.recommender.record_interactions(events[:1]).duplicates == 1  # a retried batch
        assert maas.recommender.get_track(BACH).track.title == "BWV 66.6"
        similar = maas.recommender.similar_tracks(BACH, k=2, filter={"collections": ["bach"]})
        assert [r.track.collection for r in similar.recommendations] == ["bach", "bach"]
        with pytest.raises(MaasError) as missing:
            maas.recommender.get_track("m21:no/such/track")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND


def test_sync_kserve(suite_gateway: str):
    with Client(suite_gateway) as maas:
        assert maas.inference.server_live().live and maas.inference.server_ready().ready
        assert maas.inference.model_ready("sentiment").ready
        meta = maas.inference.model_metadata("sentiment")
        assert [t.name for t in meta.inputs] == ["input_ids", "attention_mask"]
        ids = [[101, 1045, 2293, 2023, 102]]  # the sentiment model's tokenizer (BERT-style ids, a short sentence)
        reply = maas.inference.infer("sentiment", {"input_ids": ids, "attention_mask": [[1] * 5]},
                                     datatypes={"input_ids": "INT64", "attention_mask": "INT64"})
        (probabilities,) = maas.inference.outputs(reply).values()
        assert probabilities.shape == (1, 3) and abs(float(probabilities.sum()) - 1.0) < 1e-3


# ---- asyncio -------------------------------------------------------------------------------------------------
async def test_async_clients_stream_and_answer(suite_gateway: str):
    async with AsyncClient(suite_gateway, timeout=300) as maas:
        settings = dict(prompt="The old lighthouse", max_new_tokens=12, temperature=0.8, seed=7)
        whole = await maas.textgen.generate(**settings)
        deltas = [e.text async for e in maas.textgen.generate_stream(**settings)]
        assert len(deltas) > 1 and "".join(deltas) == whole.text
        kinds = [e.WhichOneof("event") async for e in maas.music.compose_stream("chorale", bars=1, seed=2,
                                                                                  piano_roll=True)]
        assert kinds[0] == "plan" and kinds[-1] == "done"
        assert (await maas.inference.server_live()).live
        meta = await maas.inference.model_metadata("text-encoder")
        assert meta.outputs[0].name == "embeddings"
        if recommender_enabled():
            reply = await maas.recommender.recommend(query_text="a calm chorale", k=3)
            assert len(reply.recommendations) == 3
        with pytest.raises(MaasError) as bad:
            async for _ in maas.music.compose_stream("folk", bars=99):
                pass
        assert [v.field for v in bad.value.field_violations] == ["bars"]


LONG = "x" * 20_000


@pytest.mark.parametrize("call, field", [
    (lambda m: m.music.compose(LONG, bars=1), "style"),
    (lambda m: m.music.compose("folk", key=LONG, bars=1), "key"),
    (lambda m: m.textgen.generate(messages=[(LONG, "hi")], max_new_tokens=1), "messages[0].role"),
    (lambda m: m.nlp.classify("a text", groups=[LONG]), "label_groups[0]"),
    (lambda m: m.recommender.get_track(LONG), None),
    (lambda m: m.inference.infer(LONG, {"x": [[1]]}), None),
], ids=["style", "key", "role", "label_groups", "track_id", "model_name"])
def test_a_20kb_field_is_a_clear_short_error_through_the_gateway(suite_gateway: str, call, field):
    """A long bad value comes back as its real status with a short, quoted prefix (a status message travels in
    a header, which every hop limits), not as INTERNAL or a metadata-size error; the suite keeps serving."""
    with Client(suite_gateway) as maas:
        with pytest.raises(MaasError) as err:
            call(maas)
        assert err.value.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), err.value
        assert len(err.value.message) < 1200 and "x" * 100 not in err.value.message  # never the whole value
        if field is not None:
            assert field in [v.field for v in err.value.field_violations]
        assert maas.nlp.analyze_sentiment("still serving").results
