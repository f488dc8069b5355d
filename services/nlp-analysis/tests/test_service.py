"""nlp-analysis end to end through a real aio server on 127.0.0.1:0, with the real models."""

import asyncio

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas_runtime.onnx_model import ModelLoadError
from maas_runtime.testing import violations
from nlp_analysis.app import NlpApp


@pytest.fixture
def stub(channel):
    return nlp_pb2_grpc.NlpAnalysisStub(channel)




async def test_health_is_serving_and_reflection_lists_every_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "maas.nlp.v1.NlpAnalysis", "inference.GRPCInferenceService"):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, name
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = set()
    async for r in responses:
        names |= {s.name for s in r.list_services_response.service}
    assert {"maas.nlp.v1.NlpAnalysis", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


async def test_embeddings_are_unit_length_and_meaningful(stub):
    texts = ["A gentle piano lullaby for a sleepy baby.", "Soft piano music to fall asleep to.",
             "Quarterly tax filing deadlines for corporations."]
    resp = await stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=texts))
    vecs = np.array([e.values for e in resp.embeddings])
    assert resp.dimension == 384 and vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3
    assert resp.model.name == "text-encoder" and resp.model.provider == "CPUExecutionProvider"


async def test_embedding_does_not_depend_on_batch_neighbours(stub):
    short = "Rain on the window."
    alone = await stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=[short]))
    padded = await stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=[short, "word " * 200]))
    assert np.allclose(alone.embeddings[0].values, padded.embeddings[0].values, atol=1e-5)


async def test_sentiment_on_clear_cases(stub):
    texts = ["I absolutely love this album, every song is wonderful!",
             "This is the worst concert I have ever been to. Awful sound and rude staff.",
             "The album will be released on vinyl next Tuesday."]
    resp = await stub.AnalyzeSentiment(nlp_pb2.AnalyzeSentimentRequest(texts=texts))
    labels = [r.label for r in resp.results]
    assert labels == [nlp_pb2.SENTIMENT_POSITIVE, nlp_pb2.SENTIMENT_NEGATIVE, nlp_pb2.SENTIMENT_NEUTRAL]
    for r in resp.results:
        assert r.negative + r.neutral + r.positive == pytest.approx(1.0, abs=1e-4)
    assert resp.model.name == "sentiment" and resp.model.build_key


async def test_builtin_labels_give_one_distribution_per_group(stub):
    resp = await stub.ClassifyText(nlp_pb2.ClassifyTextRequest(
        texts=["Distorted guitars, pounding double-kick drums and screamed vocals about war."]))
    scores = resp.results[0].scores
    groups = {s.group for s in scores}
    assert groups == {"mood", "genre"}
    for g in groups:
        assert sum(s.score for s in scores if s.group == g) == pytest.approx(1.0, abs=1e-3)
    top_genre = next(s for s in scores if s.group == "genre")
    assert top_genre.label in {"metal", "rock"}
    assert [s.score for s in scores] == sorted((s.score for s in scores), reverse=True)
    moods = await stub.ClassifyText(nlp_pb2.ClassifyTextRequest(texts=["a song"], label_groups=["mood"]))
    assert {s.group for s in moods.results[0].scores} == {"mood"}


async def test_zero_shot_with_caller_labels(stub):
    labels = ["sports", "politics", "cooking"]
    resp = await stub.ClassifyText(nlp_pb2.ClassifyTextRequest(
        texts=["The striker scored twice in the cup final.", "Simmer the onions in butter until golden."],
        candidate_labels=labels))
    assert [r.scores[0].label for r in resp.results] == ["sports", "cooking"]
    assert sum(s.score for s in resp.results[0].scores) == pytest.approx(1.0, abs=1e-4)
    multi = await stub.ClassifyText(nlp_pb2.ClassifyTextRequest(
        texts=["The striker scored twice in the cup final."], candidate_labels=labels, multi_label=True))
    by_label = {s.label: s.score for s in multi.results[0].scores}
    assert by_label["sports"] > 0.5 > by_label["cooking"]


@pytest.mark.parametrize("method,request_,field", [
    ("EmbedText", nlp_pb2.EmbedTextRequest(texts=[]), "texts"),
    ("EmbedText", nlp_pb2.EmbedTextRequest(texts=["ok", "   "]), "texts[1]"),
    ("AnalyzeSentiment", nlp_pb2.AnalyzeSentimentRequest(texts=["x" * 10_001]), "texts[0]"),
    ("AnalyzeSentiment", nlp_pb2.AnalyzeSentimentRequest(texts=["hi"] * 65), "texts"),
    ("ClassifyText", nlp_pb2.ClassifyTextRequest(texts=["hi"], candidate_labels=["a", "a"]), "candidate_labels[1]"),
    ("ClassifyText", nlp_pb2.ClassifyTextRequest(texts=["hi"], candidate_labels=["a", ""]), "candidate_labels[1]"),
    ("ClassifyText", nlp_pb2.ClassifyTextRequest(texts=["hi"], label_groups=["tempo"]), "label_groups[0]"),
    ("ClassifyText", nlp_pb2.ClassifyTextRequest(texts=["hi"], candidate_labels=["a"],
                                                 hypothesis_template="no placeholder"), "hypothesis_template"),
    ("ExtractEntities", nlp_pb2.ExtractEntitiesRequest(texts=[""]), "texts[0]"),
])
async def test_bad_input_is_invalid_argument_naming_the_field(stub, method, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(stub, method)(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(err.value) and field in err.value.details()
    ok = await stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=["still serving"]))
    assert len(ok.embeddings) == 1


async def test_invalid_utf8_is_invalid_argument_not_internal(channel):
    raw = nlp_pb2.AnalyzeSentimentRequest(texts=["good text", "BADXX"]).SerializeToString()
    raw = raw.replace(b"BADXX", b"\xff\xfeDXX")
    call = channel.unary_unary("/maas.nlp.v1.NlpAnalysis/AnalyzeSentiment", request_serializer=lambda b: b,
                               response_deserializer=nlp_pb2.AnalyzeSentimentResponse.FromString)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(raw)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err.value) == ["texts[1]"]


async def test_request_id_is_echoed(stub):
    call = stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=["hi"]), metadata=(("x-request-id", "abc123"),))
    await call
    assert ("x-request-id", "abc123") in tuple(await call.trailing_metadata())


async def test_concurrent_requests_are_batched_together(nlp_server, stub):
    pipeline = nlp_server[0].pipeline
    batches = []
    original = pipeline.encoder.run_sync

    def spy(texts):
        batches.append(len(texts))
        return original(texts)

    pipeline.encoder.run_sync = spy
    try:
        await asyncio.gather(*(stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=[f"text number {i}"]))
                               for i in range(32)))
    finally:
        pipeline.encoder.run_sync = original
    assert sum(batches) == 32 and max(batches) > 1


async def test_full_queue_answers_resource_exhausted_with_retry_hint_and_recovers(make_settings):
    app = NlpApp(make_settings(max_queue_size=8, max_batch_size=4, executor_workers=1))
    port = await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = nlp_pb2_grpc.NlpAnalysisStub(ch)
            calls = [stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=["a fairly long sentence about music " * 8] * 4))
                     for _ in range(12)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            rejected = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            assert rejected and all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in rejected)
            assert "retry after" in rejected[0].details()
            assert len(rejected) < len(results)
            assert len((await stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=["recovered"]))).embeddings) == 1
    finally:
        await app.stop()


async def test_a_document_with_more_windows_than_the_queue_is_invalid_not_retried_forever(make_settings):
    """100,000 characters of punctuation (a word piece each) need more NER windows than the queue holds: that can
    never succeed, so it is INVALID_ARGUMENT naming texts, not RESOURCE_EXHAUSTED with a retry hint."""
    app = NlpApp(make_settings(max_queue_size=64))
    port = await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = nlp_pb2_grpc.NlpAnalysisStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ExtractEntities(nlp_pb2.ExtractEntitiesRequest(texts=["!?" * 50_000]))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "retry" not in err.value.details()
            assert "texts" in err.value.details() and "at most 64" in err.value.details()
            ok = await stub.ExtractEntities(nlp_pb2.ExtractEntitiesRequest(texts=["Ada Lovelace lived in London."]))
            assert ok.results[0].entities
    finally:
        await app.stop()


async def test_label_embeddings_evicted_during_an_await_are_not_lost(make_settings):
    """A request whose labels were cached when it started, and evicted by another request while it waited for the
    encoder, still answers (it was a KeyError, so INTERNAL)."""
    app = NlpApp(make_settings(label_cache_size=2))
    await app.start()
    pipeline = app.pipeline
    encode = pipeline.encoder

    class SlowForNew:
        async def __call__(self, texts):
            if any("violin" in t for t in texts):
                await asyncio.sleep(0.3)
            return await encode(texts)

    try:
        await pipeline._caller_labels(["piano", "drums"], "This text is about {}.")
        pipeline.encoder = SlowForNew()
        first = asyncio.ensure_future(pipeline._caller_labels(["piano", "violin"], "This text is about {}."))
        await asyncio.sleep(0.05)  # the first waits for "violin"; this one evicts "piano" meanwhile
        await pipeline._caller_labels(["flute", "harp"], "This text is about {}.")
        out = await first
        assert out.shape[0] == 2 and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-3)
        assert len(pipeline._label_cache) <= 2
    finally:
        pipeline.encoder = encode
        await app.stop()


def test_strict_gpu_mode_refuses_to_start_without_a_gpu(make_settings):
    app = NlpApp(make_settings(require_gpu=True))
    with pytest.raises(ModelLoadError, match="GPU is required"):
        app.load()
    app.executor.shutdown()


async def test_nvidia_tritonclient_runs_the_real_encoder_over_kserve_v2(nlp_server, stub):
    from maas_runtime.testing import triton_check

    emb = await stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=["hello"]))
    ids = nlp_server[0].pipeline.encoder.tokenizer.encode("hello").ids
    rc, result, stderr = await triton_check(nlp_server[1], "text-encoder",
                                            {"input_ids": [ids], "attention_mask": [[1] * len(ids)]})
    assert rc == 0, stderr
    assert result["model_ready"] and result["model_metadata"]["platform"] == "onnxruntime_onnx"
    served = np.array(result["infer"]["outputs"]["embeddings"]["data"][0])
    assert np.allclose(served, emb.embeddings[0].values, atol=1e-5)
