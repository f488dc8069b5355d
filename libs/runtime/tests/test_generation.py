"""The generation engine on a tiny ONNX decoder built here (maas_runtime.generation.testing): continuous batching,
sampling, stop callbacks, cancellation, deadlines, the bounded queue, scoring."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from maas_runtime.errors import DeadlineExceeded, Overloaded
from maas_runtime.executor import BoundedExecutor
from maas_runtime.generation import (DecoderModel, FinishReason, GenerationEngine, KVCache, Sampler,
                                     SamplingParams, log_softmax)
from maas_runtime.generation.testing import build_tiny_decoder, tiny_greedy, tiny_logits, write_tiny_decoder
from maas_runtime.onnx_model import OnnxModel
from maas_runtime.settings import ModelSettings

VOCAB = 32


@pytest.fixture(scope="module", params=[(False, False), (True, False), (False, True), (True, True)],
                ids=["present-all", "present-new", "present-all-bound", "present-new-bound"])
def decoder(tmp_path_factory, request):
    """The tiny decoder with each cache contract (present = past + new, or the new positions only), its cache
    in numpy arrays or, with IO binding, in OrtValues on the session's device (generation.device): every engine
    test runs on all four."""
    appends, bound = request.param
    repo = tmp_path_factory.mktemp("repo")
    write_tiny_decoder(repo, vocab=VOCAB, context_length=64, appends=appends)
    executor = BoundedExecutor(1)
    model = OnnxModel.load(repo, "tiny-decoder", ModelSettings(providers="cpu", intra_op_threads=1), executor)
    yield DecoderModel(model, io_binding=bound)
    executor.shutdown()


def engine(decoder, **kw) -> GenerationEngine:
    return GenerationEngine(decoder, decoder.model.executor, **kw)


class Slow:
    """Makes every run of the decoder take at least ``seconds`` (to observe scheduling)."""

    def __init__(self, decoder: DecoderModel, seconds: float) -> None:
        self.decoder, self.seconds, self.original = decoder, seconds, decoder.forward

    def __enter__(self) -> "Slow":
        def forward(*args, **kw):
            time.sleep(self.seconds)
            return self.original(*args, **kw)

        self.decoder.forward = forward
        return self

    def __exit__(self, *exc) -> None:
        del self.decoder.forward


async def collect(gen) -> list:
    return [event async for event in gen]


GREEDY = dict(temperature=0.0)


def test_decoder_reads_the_cache_layout(decoder):
    assert (decoder.heads, decoder.head_dim, len(decoder.past_names)) == (2, 4, 4)
    assert decoder.present_names[0] == "present.0.key" and decoder.vocab_size == VOCAB
    assert decoder.can_batch and decoder.context_length == 64


def test_kv_cache_gather_left_pads_and_trims():
    a = KVCache([np.arange(2 * 1 * 3 * 1, dtype=np.float32).reshape(2, 1, 3, 1)], np.array([3, 1]))
    b = KVCache([np.full((1, 1, 5, 1), 9, np.float32)], np.array([5]))
    out = KVCache.gather([(a, [1]), (b, [0])])
    assert out.width == 5 and out.lengths.tolist() == [1, 5]
    assert out.past[0][0, 0, -1, 0] == a.past[0][1, 0, -1, 0]
    assert out.attention_mask(1).tolist() == [[0, 0, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1]]
    trimmed = KVCache.gather([(out, [0])])  # the longest row left: the batch narrows to what remains
    assert trimmed.width == 1 and trimmed.past[0][0, 0, 0, 0] == a.past[0][1, 0, -1, 0]


def test_kv_cache_appends_into_spare_columns_and_grows_when_full():
    """A model that returns the new positions only: they are written into the buffer's spare columns (no copy of
    the cache), which grows once full; the spare columns stay masked."""
    first = KVCache([np.arange(2 * 1 * 3 * 1, dtype=np.float32).reshape(2, 1, 3, 1)], np.array([3, 1]))
    cache = KVCache.gather([(first, [0, 1])], spare=2)
    assert (cache.width, cache.capacity) == (3, 5)
    assert cache.attention_mask(1).tolist() == [[1, 1, 1, 0, 0, 1], [0, 0, 1, 0, 0, 1]]
    buffer = cache.past[0]
    step = cache.advanced([np.full((2, 1, 1, 1), 7, np.float32)], appends=True)
    assert step.past[0] is buffer and (step.width, step.capacity) == (4, 5)  # written in place
    assert step.lengths.tolist() == [4, 2] and buffer[:, 0, 3, 0].tolist() == [7, 7]
    full = step.advanced([np.full((2, 1, 2, 1), 8, np.float32)], appends=True)  # 4 + 2 > 5: grows
    assert full.past[0] is not buffer and full.width == 6 and full.capacity > 6
    assert full.past[0][0, 0, :6, 0].tolist() == [0, 1, 2, 7, 8, 8]
    assert full.attention_mask(0)[1].tolist() == [0, 0, 1, 1, 1, 1] + [0] * (full.capacity - 6)


async def test_greedy_matches_the_reference(decoder):
    eng = engine(decoder)
    prompt = [3, 1, 4, 1, 5]
    events = await collect(eng.generate(prompt, SamplingParams(max_new_tokens=12, **GREEDY)))
    assert [e.token_id for e in events] == tiny_greedy(prompt, 12, VOCAB)
    assert [e.index for e in events] == list(range(12))
    assert events[-1].finish_reason is FinishReason.LENGTH and all(e.finish_reason is None for e in events[:-1])
    history = list(prompt)
    for e in events:  # logprobs are the model's, before any sampling transform
        assert e.logprob == pytest.approx(float(log_softmax(tiny_logits(history, VOCAB))[e.token_id]), abs=1e-5)
        history.append(e.token_id)
    await eng.close()


async def test_concurrent_requests_share_steps_and_each_get_their_own_tokens(decoder):
    eng = engine(decoder, max_batch_size=8)
    prompts = [[i + 1] * (1 + 3 * i) for i in range(6)]  # very different lengths: left padding in the batch
    lengths = [20, 5, 17, 9, 30, 12]
    gens = [eng.generate(p, SamplingParams(max_new_tokens=n, **GREEDY)) for p, n in zip(prompts, lengths)]
    results = await asyncio.gather(*(collect(g) for g in gens))
    for p, n, events in zip(prompts, lengths, results):
        assert [e.token_id for e in events] == tiny_greedy(p, n, VOCAB)
    # 93 tokens, the longest request 30: shared steps, not one step per token
    assert eng.steps < 40 and eng.step_rows / eng.steps > 2
    await eng.close()


async def test_a_new_request_joins_after_its_prefill_without_waiting(decoder):
    eng = engine(decoder, max_batch_size=4)
    with Slow(decoder, 0.01):
        long = eng.generate([1, 2, 3], SamplingParams(max_new_tokens=40, **GREEDY))
        first = [await long.__anext__() for _ in range(5)]
        short = eng.generate([9, 9], SamplingParams(max_new_tokens=3, **GREEDY))
        short_events = await collect(short)
        assert [e.token_id for e in short_events] == tiny_greedy([9, 9], 3, VOCAB)
        assert eng.running == 1, "the short request finished and left while the long one runs on"
        rest = await collect(long)
    assert [e.token_id for e in first + rest] == tiny_greedy([1, 2, 3], 40, VOCAB)
    await eng.close()


async def test_sampling_is_reproducible_with_a_seed_and_varies_without(decoder):
    eng = engine(decoder)
    params = SamplingParams(max_new_tokens=16, temperature=1.5, top_p=0.95, seed=1234)
    a = [e.token_id for e in await collect(eng.generate([5, 6], params))]
    others = eng.generate([7] * 9, SamplingParams(max_new_tokens=30, temperature=1.0))  # different batch company
    b, _ = await asyncio.gather(collect(eng.generate([5, 6], params)), collect(others))
    assert a == [e.token_id for e in b]
    assert a != tiny_greedy([5, 6], 16, VOCAB), "temperature 1.5 should not be greedy"
    unseeded = [eng.generate([5, 6], SamplingParams(max_new_tokens=16, temperature=1.5)) for _ in range(3)]
    assert len({g.seed for g in unseeded}) == 3
    outs = await asyncio.gather(*(collect(g) for g in unseeded))
    assert len({tuple(e.token_id for e in o) for o in outs}) > 1
    await eng.close()


class OddThenEven:
    """A per-request constraint: odd tokens until the third token, even ones after (its state is the count)."""

    def __init__(self) -> None:
        self.chosen: list[int] = []

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        out = np.full_like(logits, -np.inf)
        parity = 1 if len(self.chosen) < 3 else 0
        out[parity::2] = logits[parity::2]
        return out

    def advance(self, token: int) -> None:
        self.chosen.append(token)


async def test_a_logits_processor_constrains_its_request_only(decoder):
    eng = engine(decoder)
    rule = OddThenEven()
    constrained = eng.generate([3, 4], SamplingParams(max_new_tokens=8, temperature=1.0, seed=9), processor=rule)
    free = eng.generate([3, 4], SamplingParams(max_new_tokens=8, **GREEDY))  # shares the steps, unconstrained
    got, plain = await asyncio.gather(collect(constrained), collect(free))
    tokens = [e.token_id for e in got]
    assert [t % 2 for t in tokens] == [1, 1, 1, 0, 0, 0, 0, 0] and rule.chosen == tokens
    assert all(e.logprob <= 0 for e in got)  # reported under the model, not under the constraint
    assert [e.token_id for e in plain] == tiny_greedy([3, 4], 8, VOCAB)
    await eng.close()


@pytest.mark.parametrize("scale", [40.0, 6.0, 0.5], ids=["confident", "wider", "flat"])
def test_nucleus_is_the_one_a_full_sort_gives(scale):
    """Top-p looks among the tokens within a margin of the best (margins tried in turn), then all: the same set
    as sorting the whole vocabulary."""
    rng = np.random.default_rng(int(scale * 10))
    for _ in range(20):
        x = (rng.standard_normal(5000) * scale).astype(np.float32)
        order = np.argsort(-x, kind="stable")
        probs = np.exp(x[order] - x.max()).astype(np.float64)
        expected = set(order[: int(np.searchsorted(np.cumsum(probs / probs.sum()), 0.9)) + 1].tolist())
        sampler = Sampler(SamplingParams(temperature=1.0, top_p=0.9, seed=0), 5000)
        assert set(sampler._nucleus(x, None).tolist()) == expected


def test_nucleus_beyond_the_widest_margin():
    """A nucleus that needs tokens far below the best (here more mass than the top token's 0.99999) is found among
    all tokens, most likely first."""
    x = np.zeros(5000, dtype=np.float32)
    x[7], x[42] = 20.0, 0.5
    nucleus = Sampler(SamplingParams(temperature=1.0, top_p=0.9999995, seed=0), 5000)._nucleus(x, None)
    assert nucleus[:2].tolist() == [7, 42] and 2 < nucleus.shape[0] < 5000


def test_top_k_top_p_and_repetition_penalty():
    logits = np.array([5.0, 4.0, 3.0, -1.0, -2.0], dtype=np.float32)
    assert {Sampler(SamplingParams(temperature=1.0, top_k=1, seed=s), 5)(logits)[0] for s in range(20)} == {0}
    top2 = {Sampler(SamplingParams(temperature=5.0, top_k=2, seed=s), 5)(logits)[0] for s in range(200)}
    assert top2 == {0, 1}
    # probabilities at T=1: .665 .245 .090 ...: top_p .7 keeps the first two only
    nucleus = {Sampler(SamplingParams(temperature=1.0, top_p=0.7, seed=s), 5)(logits)[0] for s in range(300)}
    assert nucleus == {0, 1}
    # repetition penalty: token 0 was in the context, so greedy moves to token 1
    assert Sampler(SamplingParams(temperature=0.0, repetition_penalty=2.0), 5, [0])(logits)[0] == 1
    big = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 3  # the shortlist path of top-p
    full = np.argsort(-big)
    probs = np.exp(big[full] - big.max())
    probs /= probs.sum()
    allowed = set(full[: int(np.searchsorted(np.cumsum(probs), 0.5)) + 1].tolist())
    assert {Sampler(SamplingParams(temperature=1.0, top_p=0.5, seed=s), 1000)(big)[0] for s in range(300)} <= allowed
    with pytest.raises(ValueError):
        SamplingParams(temperature=float("nan"))
    with pytest.raises(ValueError):
        SamplingParams(top_p=0.0)


async def test_eos_and_stop_callback_finish_and_the_context_caps_length(decoder):
    eng = engine(decoder)
    prompt = [2, 7]
    expected = tiny_greedy(prompt, 10, VOCAB)
    eos = await collect(eng.generate(prompt, SamplingParams(max_new_tokens=10, stop_token_ids=(expected[3],),
                                                            **GREEDY)))
    stop_at = expected.index(expected[3])
    assert [e.token_id for e in eos] == expected[:stop_at + 1] and eos[-1].finish_reason is FinishReason.EOS
    seen = []
    stopped = await collect(eng.generate(prompt, SamplingParams(max_new_tokens=10, **GREEDY),
                                         stop=lambda t: seen.append(t) or len(seen) == 4))
    assert len(stopped) == 4 and stopped[-1].finish_reason is FinishReason.STOP
    near_full = await collect(eng.generate([1] * 60, SamplingParams(max_new_tokens=50, **GREEDY)))
    assert len(near_full) == 4 and near_full[-1].finish_reason is FinishReason.LENGTH  # context 64
    with pytest.raises(ValueError):
        eng.generate([1] * 64, SamplingParams(**GREEDY))
    await eng.close()


async def test_cancelling_frees_the_slot_within_one_step(decoder):
    eng = engine(decoder, max_batch_size=1)
    with Slow(decoder, 0.02):
        first = eng.generate([1, 2], SamplingParams(max_new_tokens=60, **GREEDY))
        await first.__anext__()
        waiting = eng.generate([3, 4], SamplingParams(max_new_tokens=3, **GREEDY))
        await asyncio.sleep(0.1)
        assert eng.running == 1 and eng.waiting == 1  # one slot: the second one waits
        steps = eng.steps
        first.cancel()
        events = await asyncio.wait_for(collect(waiting), 5)
        assert [e.token_id for e in events] == tiny_greedy([3, 4], 3, VOCAB)
        assert eng.steps - steps <= 4, "the cancelled request kept decoding"
    await eng.close()


async def test_a_reader_that_goes_away_stops_its_decoding(decoder):
    eng = engine(decoder)
    with Slow(decoder, 0.01):
        async def read_three():
            async with eng.generate([1], SamplingParams(max_new_tokens=60, **GREEDY)) as gen:
                async for event in gen:
                    if event.index == 2:
                        return

        await read_three()
        steps = eng.steps
        await asyncio.sleep(0.1)
        assert eng.running == 0 and eng.steps - steps <= 1
    await eng.close()


async def test_bounded_queue_refuses_with_a_retry_hint(decoder):
    eng = engine(decoder, max_batch_size=1, max_queue_size=2)
    with Slow(decoder, 0.01):
        running = eng.generate([1], SamplingParams(max_new_tokens=30, **GREEDY))
        await running.__anext__()
        queued = [eng.generate([2], SamplingParams(max_new_tokens=2, **GREEDY)) for _ in range(2)]
        with pytest.raises(Overloaded) as err:
            eng.generate([3], SamplingParams(**GREEDY))
        assert err.value.retry_after_s > 0 and "retry after" in err.value.message
        running.cancel()
        for q in queued:
            assert len(await collect(q)) == 2
    await eng.close()


async def test_deadline_fails_the_request_and_spares_the_others(decoder):
    eng = engine(decoder)
    with Slow(decoder, 0.01):
        late = eng.generate([1], SamplingParams(max_new_tokens=60, **GREEDY), deadline=time.monotonic() + 0.1)
        fine = eng.generate([2], SamplingParams(max_new_tokens=20, **GREEDY))
        with pytest.raises(DeadlineExceeded):
            await collect(late)
        assert [e.token_id for e in await collect(fine)] == tiny_greedy([2], 20, VOCAB)
    await eng.close()


async def test_long_prompts_are_prefilled_in_chunks_while_others_decode(decoder):
    eng = engine(decoder, prefill_chunk_tokens=8)
    long_prompt = [(7 * i) % VOCAB for i in range(40)]
    short = eng.generate([4, 4], SamplingParams(max_new_tokens=12, **GREEDY))
    long = eng.generate(long_prompt, SamplingParams(max_new_tokens=6, **GREEDY))
    a, b = await asyncio.gather(collect(short), collect(long))
    assert [e.token_id for e in a] == tiny_greedy([4, 4], 12, VOCAB)
    assert [e.token_id for e in b] == tiny_greedy(long_prompt, 6, VOCAB)
    await eng.close()


async def test_a_shared_prefix_is_prefilled_once_and_its_cache_reused(decoder):
    eng = engine(decoder, prefix_cache_bytes=1 << 20)
    system = [3, 1, 4, 1, 5, 9, 2, 6]
    prompts = [system + [7, 7], system + [8], system + [2, 7, 1, 8, 2], [3, 1, 4, 1, 5, 9, 2, 5, 3]]
    first = await collect(eng.generate(prompts[0], SamplingParams(max_new_tokens=10, **GREEDY), shared_prefix=8))
    assert eng.prefix_hits == 0
    gens = [eng.generate(p, SamplingParams(max_new_tokens=10, **GREEDY), shared_prefix=8) for p in prompts[1:]]
    rest = await asyncio.gather(*(collect(g) for g in gens))
    assert eng.prefix_hits == 2  # the last prompt's first 8 tokens differ from the system prefix
    for prompt, events in zip(prompts, [first, *rest]):
        assert [e.token_id for e in events] == tiny_greedy(prompt, 10, VOCAB)
    # the cache is read only: using it again gives the same tokens
    again = await collect(eng.generate(prompts[0], SamplingParams(max_new_tokens=10, **GREEDY), shared_prefix=8))
    assert [e.token_id for e in again] == [e.token_id for e in first] and eng.prefix_hits == 3
    await eng.close()


class Numbering:
    """A request's own position ids (``3 * index + 2``), counting the tokens it is asked about."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, tokens):
        ids = 3 * np.arange(self.seen, self.seen + len(tokens), dtype=np.int64) + 2
        self.seen += len(tokens)
        return ids


async def test_a_request_may_number_its_own_tokens(decoder):
    eng = engine(decoder, max_batch_size=8, prefill_chunk_tokens=8)
    prompts = [[5, 1, 2], [4, 4], [(3 * i) % VOCAB for i in range(20)], [9]]  # the third prefilled in chunks
    numbered = [True, False, True, True]
    numbers = [Numbering() if n else None for n in numbered]
    gens = [eng.generate(p, SamplingParams(max_new_tokens=9, **GREEDY), positions=n)
            for p, n in zip(prompts, numbers)]
    results = await asyncio.gather(*(collect(g) for g in gens))
    for p, n, events in zip(prompts, numbered, results):
        expected = tiny_greedy(p, 9, VOCAB, (lambda i: 3 * i + 2) if n else (lambda i: i))
        assert [e.token_id for e in events] == expected
        assert expected != tiny_greedy(p, 9, VOCAB, (lambda i: i) if n else (lambda i: 3 * i + 2))
    for p, n in zip(prompts, numbers):  # asked once about every token fed: the prompt and all but the last token
        assert n is None or n.seen == len(p) + 9 - 1
    with pytest.raises(ValueError, match="positions"):
        eng.generate([1, 2, 3], SamplingParams(max_new_tokens=2), positions=lambda tokens: np.zeros(2, np.int64))
    await eng.close()


async def test_the_prefix_cache_keeps_within_its_budget_dropping_the_least_recently_used(decoder):
    one = 8 * decoder.bytes_per_token()  # one 8-token prefix
    eng = engine(decoder, prefix_cache_bytes=2 * one)
    a, b, c = ([i] * 8 for i in (1, 2, 3))
    for prefix in (a, b, a, c):  # c pushes out b, the least recently used
        await collect(eng.generate(prefix + [5], SamplingParams(max_new_tokens=2, **GREEDY), shared_prefix=8))
    assert eng.prefix_hits == 1
    for prefix, hit in ((a, True), (c, True), (b, False)):
        before = eng.prefix_hits
        await collect(eng.generate(prefix + [6], SamplingParams(max_new_tokens=2, **GREEDY), shared_prefix=8))
        assert (eng.prefix_hits > before) == hit
    off = engine(decoder)  # no budget: no cache
    await collect(off.generate(a + [5], SamplingParams(max_new_tokens=2, **GREEDY), shared_prefix=8))
    await collect(off.generate(a + [5], SamplingParams(max_new_tokens=2, **GREEDY), shared_prefix=8))
    assert off.prefix_hits == 0
    await eng.close()
    await off.close()


async def test_scoring_returns_each_tokens_logprob(decoder):
    eng = engine(decoder, prefill_chunk_tokens=8)
    text = [(5 * i + 3) % VOCAB for i in range(30)]  # chunked: 4 chunks
    got, short = await asyncio.gather(eng.score(text), eng.score([1, 2, 3]))
    want = [log_softmax(tiny_logits(text[:i + 1], VOCAB))[text[i + 1]] for i in range(len(text) - 1)]
    assert np.allclose(got, want, atol=1e-5) and got.shape == (29,)
    assert short.shape == (2,)
    with pytest.raises(ValueError):
        await eng.score([1])
    await eng.close()


async def test_closing_the_engine_fails_what_is_in_flight(decoder):
    from maas_runtime.errors import Unavailable

    eng = engine(decoder)
    with Slow(decoder, 0.01):
        gen = eng.generate([1], SamplingParams(max_new_tokens=60, **GREEDY))
        await gen.__anext__()
        await eng.close()
        with pytest.raises(Unavailable):
            await collect(gen)
        with pytest.raises(Unavailable):
            eng.generate([1], SamplingParams(**GREEDY))


def test_logits_to_keep_limits_the_output_to_the_last_positions(decoder):
    ids = np.array([[1, 2, 3, 4]], dtype=np.int64)
    args = (ids, np.ones((1, 4), np.int64), np.arange(4)[None], decoder.empty_past(1))
    every, _ = decoder.forward(*args)
    last, _ = decoder.forward(*args, last_only=True)
    assert decoder.has_logits_to_keep and every.shape == (1, 4, VOCAB) and last.shape == (1, 1, VOCAB)
    assert np.array_equal(last[0, 0], every[0, -1])


def test_the_device_store_does_what_the_host_store_does():
    """Each cache operation of generation.device: OrtValues through small ONNX graphs give the numpy result."""
    import onnxruntime as ort

    from maas_runtime.generation.device import HOST, DeviceStore

    session = ort.InferenceSession(build_tiny_decoder().SerializeToString(), providers=["CPUExecutionProvider"])
    device = DeviceStore(session, layers=2, dtype=np.float32)
    rng = np.random.default_rng(1)
    a = [rng.standard_normal((3, 2, 5, 4)).astype(np.float32) for _ in range(2)]
    b = [rng.standard_normal((1, 2, 2, 4)).astype(np.float32) for _ in range(2)]
    new = [rng.standard_normal((3, 2, 1, 4)).astype(np.float32) for _ in range(2)]
    da, db, dnew = ([device.from_host(x) for x in group] for group in (a, b, new))

    def same(host, dev):
        assert len(host) == len(dev) and all(isinstance(d, ort.OrtValue) for d in dev)
        for h, d in zip(host, dev):
            np.testing.assert_array_equal(d.numpy(), h)

    same(HOST.take(a, [2, 0], 1, 4, left=2, right=3), device.take(da, [2, 0], 1, 4, left=2, right=3))
    same(HOST.take(a, None, 0, 5), device.take(da, None, 0, 5))
    blocks = [(a, [1], 2, 5), (b, None, 0, 2)]
    same(HOST.gather(blocks, width=3, spare=2), device.gather([(da, [1], 2, 5), (db, None, 0, 2)], 3, 2))
    same(HOST.write([x.copy() for x in a], new, 3), device.write(da, dnew, 3))
    assert device.columns(da[0]) == 5 and device.nbytes(da[0]) == a[0].nbytes


async def test_with_io_binding_the_cache_stays_in_ortvalues(tmp_path):
    """Bound, a decoding batch's cache is the store's OrtValues between steps (on a GPU: device memory)."""
    import onnxruntime as ort

    write_tiny_decoder(tmp_path, vocab=VOCAB, context_length=64, appends=True)
    executor = BoundedExecutor(1)
    model = OnnxModel.load(tmp_path, "tiny-decoder", ModelSettings(providers="cpu", intra_op_threads=1), executor)
    eng = engine(DecoderModel(model, io_binding=True))
    gen = eng.generate([1, 2, 3], SamplingParams(max_new_tokens=6, **GREEDY))
    tokens = []
    async for event in gen:
        tokens.append(event.token_id)
        if eng._batch is not None:
            assert all(isinstance(p, ort.OrtValue) for p in eng._batch.past)
    assert tokens == tiny_greedy([1, 2, 3], 6, VOCAB) and eng.steps >= 5
    await eng.close()
    executor.shutdown()


def test_batch_sizes_and_binding_follow_the_provider():
    s = ModelSettings()
    assert s.batch_size("CPUExecutionProvider") == 32 and s.batch_size("CUDAExecutionProvider") == 128
    assert ModelSettings(max_batch_size=4).batch_size("CUDAExecutionProvider") == 4
    assert s.binds("CUDAExecutionProvider") and not s.binds("CPUExecutionProvider")
    assert ModelSettings(io_binding="on").binds("CPUExecutionProvider")
    assert not ModelSettings(io_binding="off").binds("CUDAExecutionProvider")


async def test_a_full_executor_refuses_others_but_never_fails_running_generations(tmp_path):
    """KServe calls may fill the executor the engine shares; the engine's own steps are never refused."""
    import threading

    write_tiny_decoder(tmp_path, vocab=VOCAB, context_length=64)
    executor = BoundedExecutor(1, max_pending=1)
    model = OnnxModel.load(tmp_path, "tiny-decoder", ModelSettings(providers="cpu", intra_op_threads=1), executor)
    eng = engine(DecoderModel(model))
    gate = threading.Event()
    blocker = asyncio.ensure_future(executor.run(gate.wait, 5))
    await asyncio.sleep(0.05)
    with pytest.raises(Overloaded):
        await executor.run(lambda: None)
    running = asyncio.ensure_future(collect(eng.generate([1, 2, 3], SamplingParams(max_new_tokens=4, **GREEDY))))
    await asyncio.sleep(0.05)
    gate.set()
    assert [e.token_id for e in await running] == tiny_greedy([1, 2, 3], 4, VOCAB)
    await blocker
    await eng.close()
    executor.shutdown()


async def test_admission_by_expected_wait_refuses_at_once_what_would_wait_too_long(decoder):
    """One row and slow steps: the queue drains at ~5 requests a second. Requests arriving every 50 ms are
    admitted while their expected wait stays under max_queue_wait_s, the rest refused at once with a retry hint
    (though the queue has room); every admitted one starts within about that wait."""
    eng = engine(decoder, max_batch_size=1, max_queue_size=64, max_queue_wait_s=0.5)
    with Slow(decoder, 0.02):
        params = SamplingParams(max_new_tokens=10, **GREEDY)  # ~0.2 s a request

        waits, refused, readers = [], [], []
        for i in range(40):
            submitted = time.monotonic()
            try:
                gen = eng.generate([1 + i % 20, 2], params)
            except Overloaded as err:
                refused.append(err)
            else:
                async def read(gen=gen, submitted=submitted) -> None:
                    async for _ in gen:
                        waits.append(time.monotonic() - submitted)
                        break
                    async for _ in gen:
                        pass
                readers.append(asyncio.ensure_future(read()))
            await asyncio.sleep(0.05)
        await asyncio.gather(*readers)
        assert len(readers) >= 5 and len(refused) >= 10 and len(readers) + len(refused) == 40
        assert all(e.retry_after_s > 0 and "would wait" in e.message for e in refused)
        assert max(waits) < 0.5 + 0.5, sorted(waits)[-5:]  # the bound, plus a step or two of slack
        assert eng.expected_wait() == 0.0  # drained: room again
    await eng.close()
