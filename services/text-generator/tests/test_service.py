"""text-generator end to end through a real aio server on 127.0.0.1:0, with the real models (float32 served by
default; a second server with the int8 model, one decoding slot and a queue of one)."""

import asyncio
import math
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maas.textgen.v1 import textgen_pb2 as pb
from maas.textgen.v1 import textgen_pb2_grpc
from maas_runtime.testing import violations
from text_generator.app import TextGenApp
from text_generator.pipeline import GenerationRequest

HAIKU = [pb.ChatMessage(role="user", content="Write a haiku about rain on a tin roof.")]
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"  # greedy decoding counts on and on: a request that does not end by itself
JAPANESE = [pb.ChatMessage(role="user", content="Translate 'good morning, my friend' into Japanese.")]


@pytest.fixture
def stub(channel):
    return textgen_pb2_grpc.TextGeneratorStub(channel)




async def stream_all(stub, **kw) -> list[pb.GenerateStreamResponse]:
    return [event async for event in stub.GenerateStream(pb.GenerateStreamRequest(**kw))]


async def test_health_is_serving_and_reflection_lists_every_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "maas.textgen.v1.TextGenerator", "inference.GRPCInferenceService"):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, name
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    names = set()
    async for r in refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
        names |= {s.name for s in r.list_services_response.service}
    assert {"maas.textgen.v1.TextGenerator", "inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


async def test_chat_generation_and_stream_agree(stub):
    unary = await stub.Generate(pb.GenerateRequest(messages=HAIKU, max_new_tokens=24, temperature=0, logprobs=True))
    assert unary.text.strip() and unary.completion_tokens == len(unary.tokens) <= 24
    assert unary.finish_reason in (pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_EOS)
    assert unary.model.name == "smollm2-135m-instruct" and unary.model.provider == "CPUExecutionProvider"
    assert all(t.logprob <= 0 for t in unary.tokens)
    count = await stub.CountTokens(pb.CountTokensRequest(messages=HAIKU))
    assert count.token_count == unary.prompt_tokens and count.context_length == 4096
    events = await stream_all(stub, messages=HAIKU, max_new_tokens=24, temperature=0, logprobs=True)
    assert "".join(e.text for e in events) == unary.text
    assert [t.id for e in events for t in e.tokens] == [t.id for t in unary.tokens]
    assert all(e.text for e in events[:-1]) and events[-1].finish_reason == unary.finish_reason
    assert events[0].model.name == unary.model.name and events[0].seed and unary.seed  # random seeds, reported
    assert events[-1].completion_tokens == unary.completion_tokens


async def test_streamed_text_never_splits_a_character(stub):
    """Japanese comes out of this byte-level tokenizer as pieces of characters: each event holds whole ones."""
    events = await stream_all(stub, messages=JAPANESE, max_new_tokens=40, temperature=0, logprobs=True)
    text = "".join(e.text for e in events)
    assert any(ord(ch) > 0x3000 for ch in text), f"expected CJK text, got {text!r}"
    assert "\ufffd" not in text
    split = sum(len(e.tokens) > 1 for e in events)
    assert split > 0, "no event covered several tokens: no character was held back"
    unary = await stub.Generate(pb.GenerateRequest(messages=JAPANESE, max_new_tokens=40, temperature=0))
    assert unary.text == text
    for e in events:
        e.text.encode("utf-8")  # whole characters: encodes without error


async def test_same_seed_same_text_and_the_seed_is_reported(stub):
    request = dict(prompt="Once upon a time, in a city of bridges,", max_new_tokens=24, temperature=0.9, top_p=0.95)
    a = await stub.Generate(pb.GenerateRequest(seed=42, **request))
    b = await stub.Generate(pb.GenerateRequest(seed=42, **request))
    c = await stub.Generate(pb.GenerateRequest(seed=43, **request))
    assert a.text == b.text and a.seed == 42
    assert a.text != c.text
    random = await stub.Generate(pb.GenerateRequest(**request))
    again = await stub.Generate(pb.GenerateRequest(seed=random.seed, **request))
    assert again.text == random.text  # a random seed, returned, reproduces the answer
    events = await stream_all(stub, seed=42, **request)
    assert "".join(e.text for e in events) == a.text


async def test_stop_sequences_end_the_text_and_are_not_included(stub):
    free = await stub.Generate(pb.GenerateRequest(messages=HAIKU, max_new_tokens=40, temperature=0))
    assert "rain" in free.text
    stop_at = free.text.index("rain")
    stopped = await stub.Generate(pb.GenerateRequest(messages=HAIKU, max_new_tokens=40, temperature=0,
                                                     stop=["rain", "zzz"]))
    assert stopped.text == free.text[:stop_at]
    assert stopped.finish_reason == pb.FINISH_REASON_STOP and stopped.stop_sequence == "rain"
    assert stopped.completion_tokens < free.completion_tokens
    events = await stream_all(stub, messages=HAIKU, max_new_tokens=40, temperature=0, stop=["rain"])
    assert "".join(e.text for e in events) == stopped.text and all("rain" not in e.text for e in events)
    assert events[-1].finish_reason == pb.FINISH_REASON_STOP and events[-1].stop_sequence == "rain"


async def test_eos_finishes_a_short_answer(stub):
    r = await stub.Generate(pb.GenerateRequest(
        messages=[pb.ChatMessage(role="user", content="What is the capital of France? One word.")],
        max_new_tokens=60, temperature=0))
    assert r.finish_reason == pb.FINISH_REASON_EOS and "Paris" in r.text and "<|im_end|>" not in r.text


async def test_concurrent_streams_each_get_their_own_text(stub, textgen_server):
    prompts = [[pb.ChatMessage(role="user", content=c)] for c in (
        "Name three colours.", "Write a two-line poem about the moon.", "What is 2 + 2?",
        "Give me a title for a jazz album.", "Describe a cat in one sentence.", "Say hello in Spanish.")]
    alone = [await stub.Generate(pb.GenerateRequest(messages=m, max_new_tokens=20, temperature=0)) for m in prompts]
    engine = textgen_server[0].pipeline.engine
    steps, rows = engine.steps, engine.step_rows
    together = await asyncio.gather(*(stream_all(stub, messages=m, max_new_tokens=20, temperature=0)
                                      for m in prompts))
    for solo, events in zip(alone, together):
        assert "".join(e.text for e in events) == solo.text
    assert (engine.step_rows - rows) / (engine.steps - steps) > 2.5, "the streams did not share decoding steps"


async def test_conversations_reuse_the_cached_system_turn(stub, textgen_server):
    pipeline = textgen_server[0].pipeline
    hits = pipeline.engine.prefix_hits
    answers = []
    for content in ("Name a colour.", "Name a fruit.", "Name a colour."):
        messages = [pb.ChatMessage(role="user", content=content)]
        answers.append(await stub.Generate(pb.GenerateRequest(messages=messages, max_new_tokens=8, temperature=0)))
    assert pipeline.engine.prefix_hits >= hits + 2
    assert answers[0].text == answers[2].text
    ids, _ = pipeline.prepare(GenerationRequest(messages=(("user", "Name a colour."),)))
    opening = pipeline.tokenizer.decode(ids[:pipeline.shared_prefix(ids, (("user", "Name a colour."),))],
                                        skip_special_tokens=False)
    assert opening.startswith("<|im_start|>system\n") and opening.endswith("<|im_end|>\n<|im_start|>user\n")
    assert pipeline.shared_prefix(ids, ()) == 0  # a plain prompt: nothing shared


async def test_score_text_gives_token_logprobs_and_the_models_perplexity(stub, textgen_server):
    from maas_modelbuild.recipes.smollm2 import HELDOUT

    text = "The quick brown fox jumps over the lazy dog."
    r = await stub.ScoreText(pb.ScoreTextRequest(text=text))
    assert r.scored_tokens == len(r.tokens) - 1 and not r.tokens[0].HasField("logprob")
    assert all(t.HasField("logprob") and t.logprob <= 0 for t in r.tokens[1:])
    assert math.isclose(r.total_logprob, sum(t.logprob for t in r.tokens[1:]), rel_tol=1e-4)
    assert math.isclose(r.perplexity, math.exp(-r.total_logprob / r.scored_tokens), rel_tol=1e-6)
    assert "".join(text[t.span.start:t.span.end] for t in r.tokens) == text
    shuffled = await stub.ScoreText(pb.ScoreTextRequest(text="dog lazy the over jumps fox brown quick The."))
    assert shuffled.perplexity > 5 * r.perplexity
    # the served model is the one the build evaluated: same held-out perplexity as its manifest
    manifest = textgen_server[0].pipeline.model.manifest
    heldout = await stub.ScoreText(pb.ScoreTextRequest(text=HELDOUT.read_text()))
    assert heldout.scored_tokens == manifest["evaluation"]["heldout_tokens_scored"]
    assert heldout.perplexity == pytest.approx(manifest["evaluation"]["heldout_perplexity"], rel=0.005)


def msgs(*pairs):
    return [pb.ChatMessage(role=r, content=c) for r, c in pairs]


@pytest.mark.parametrize("request_, field", [
    (pb.GenerateRequest(), "prompt"),
    (pb.GenerateRequest(prompt="hi", messages=msgs(("user", "hi"))), "messages"),
    (pb.GenerateRequest(prompt="hi", max_new_tokens=0), "max_new_tokens"),
    (pb.GenerateRequest(prompt="hi", max_new_tokens=-3), "max_new_tokens"),
    (pb.GenerateRequest(prompt="hi", max_new_tokens=5000), "max_new_tokens"),
    (pb.GenerateRequest(prompt="word " * 5000), "prompt"),
    (pb.GenerateRequest(prompt="x" * 40_000), "prompt"),
    (pb.GenerateRequest(prompt="hi", temperature=-0.5), "temperature"),
    (pb.GenerateRequest(prompt="hi", temperature=float("nan")), "temperature"),
    (pb.GenerateRequest(prompt="hi", top_p=0.0), "top_p"),
    (pb.GenerateRequest(prompt="hi", top_p=1.5), "top_p"),
    (pb.GenerateRequest(prompt="hi", top_k=-1), "top_k"),
    (pb.GenerateRequest(prompt="hi", repetition_penalty=0.0), "repetition_penalty"),
    (pb.GenerateRequest(messages=msgs(("user", "hi"), ("robot", "beep"))), "messages[1].role"),
    (pb.GenerateRequest(prompt="hi", stop=["ok", ""]), "stop[1]"),
    (pb.GenerateRequest(prompt="hi", stop=["s"] * 9), "stop"),
])
async def test_bad_input_is_invalid_argument_naming_the_field(stub, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(err.value) and field in err.value.details()


async def test_bad_input_on_the_other_rpcs(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stream_all(stub, prompt="hi", top_p=2.0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "top_p" in violations(err.value)
    for call, request_, field in ((stub.ScoreText, pb.ScoreTextRequest(text=""), "text"),
                                  (stub.ScoreText, pb.ScoreTextRequest(text="a"), "text"),
                                  (stub.CountTokens, pb.CountTokensRequest(), "text"),
                                  (stub.CountTokens, pb.CountTokensRequest(messages=msgs(("nobody", "x"))),
                                   "messages[0].role")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(request_)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in violations(err.value)
    ok = await stub.CountTokens(pb.CountTokensRequest(text="still serving"))
    assert ok.token_count == 2


async def test_a_deadline_is_honoured(stub, textgen_server):
    engine = textgen_server[0].pipeline.engine
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(pb.GenerateRequest(prompt=COUNTING, max_new_tokens=1000, temperature=0), timeout=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(50):
        if engine.running == 0:
            break
        await asyncio.sleep(0.05)
    assert engine.running == 0


@pytest.fixture(scope="module")
async def one_slot(make_settings):
    """A second server, int8, with one decoding slot and a queue of one (admitted by length only): cancellation, the
    queue bound."""
    app = TextGenApp(make_settings(max_batch_size=1, max_queue_size=1, quantization="int8", max_queue_wait_s=0))
    port = await app.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield app, textgen_pb2_grpc.TextGeneratorStub(ch)
    await app.stop()


async def test_cancelling_a_stream_frees_its_slot(one_slot):
    app, stub = one_slot
    engine = app.pipeline.engine
    call = stub.GenerateStream(pb.GenerateStreamRequest(prompt=COUNTING, max_new_tokens=1000, temperature=0))
    await call.read()
    assert engine.running == 1
    steps = engine.steps
    started = time.monotonic()
    call.cancel()
    follow = await stub.Generate(pb.GenerateRequest(prompt="Hello", max_new_tokens=4, temperature=0))
    assert follow.completion_tokens == 4 and time.monotonic() - started < 10
    assert engine.steps - steps <= 4 + 2, "the cancelled stream kept its slot"


async def test_a_full_queue_answers_resource_exhausted_with_a_retry_hint(one_slot):
    app, stub = one_slot
    running = stub.GenerateStream(pb.GenerateStreamRequest(prompt=COUNTING, max_new_tokens=1000, temperature=0))
    await running.read()
    queued = asyncio.ensure_future(stub.Generate(pb.GenerateRequest(prompt="Queued", max_new_tokens=2,
                                                                    temperature=0)))
    for _ in range(100):
        if app.pipeline.engine.waiting:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Generate(pb.GenerateRequest(prompt="One too many", max_new_tokens=2))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "retry after" in err.value.details()
    md = dict(err.value.trailing_metadata() or ())
    status = status_pb2.Status.FromString(md["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry) and retry.retry_delay.ToMilliseconds() > 0
    running.cancel()
    assert (await queued).completion_tokens == 2


async def test_int8_model_holds_quality_and_reproduces_seeded_text(one_slot):
    from maas_modelbuild.recipes.smollm2 import HELDOUT

    app, stub = one_slot
    manifest = app.pipeline.model.manifest
    assert manifest["quantization"]["bits"] == 8 and manifest["evaluation"]["heldout_perplexity_change"] <= 0.05
    heldout = await stub.ScoreText(pb.ScoreTextRequest(text=HELDOUT.read_text()))
    assert heldout.model.name == "smollm2-135m-instruct-int8"
    assert heldout.perplexity == pytest.approx(manifest["evaluation"]["heldout_perplexity"], rel=0.005)
    request = pb.GenerateRequest(prompt="The old piano in the hall", max_new_tokens=16, temperature=0.8, seed=7)
    a, b = await stub.Generate(request), await stub.Generate(request)
    assert a.text == b.text and a.seed == 7


class FreezingProxy:
    """A TCP proxy on loopback that can stop forwarding without closing either side: to the server, its client
    has vanished without a FIN or a RST (a half-open connection, as when a laptop's network drops)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.frozen = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while not self.frozen.is_set():
                data = await src.read(65536)
                if not data or self.frozen.is_set():
                    break
                dst.write(data)
                await dst.drain()
            await asyncio.Event().wait() if self.frozen.is_set() else None  # frozen: hold both sockets open

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def close(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.server.close()


async def test_a_client_gone_without_closing_frees_its_generation_slot(make_settings):
    """Server keepalive: the server pings; with the client gone silent the ping is never answered, the server
    closes the connection, and the stream's decoding stops (its slot is free for others)."""
    app = TextGenApp(make_settings(keepalive_time_s=1.0, keepalive_timeout_s=1.0))
    port = await app.start()
    proxy = FreezingProxy(port)
    proxy_port = await proxy.start()
    engine = app.pipeline.engine
    try:
        ch = grpc.aio.insecure_channel(f"127.0.0.1:{proxy_port}")
        stub = textgen_pb2_grpc.TextGeneratorStub(ch)
        call = stub.GenerateStream(pb.GenerateStreamRequest(prompt=COUNTING, max_new_tokens=1000, temperature=0))
        await call.read()
        assert engine.running == 1
        proxy.frozen.set()
        started = time.monotonic()
        while engine.running and time.monotonic() - started < 20:
            await asyncio.sleep(0.1)
        assert engine.running == 0, "the vanished client kept its generation slot"
        assert time.monotonic() - started < 10  # keepalive 1 s + timeout 1 s, and the step in flight
        call.cancel()
        await ch.close(grace=0)
    finally:
        await proxy.close()
        await app.stop()
