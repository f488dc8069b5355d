"""Where the cache lives and which precision runs, on the real SmolLM2: the cache bound to the session's device
(IO binding, the CUDA path run here on the CPU provider) gives the tokens the numpy cache gives, and the float16
build (the CUDA default) serves, says so in every answer, and holds the float32 model's quality."""

from __future__ import annotations

import asyncio

import grpc
import onnxruntime as ort
import pytest

from maas.textgen.v1 import textgen_pb2 as pb
from maas.textgen.v1 import textgen_pb2_grpc
from text_generator.app import TextGenApp

PROMPTS = ["Write a haiku about rain on a tin roof.", "Name three instruments of a string quartet.",
           "Describe the sea at night in two sentences."]


async def served(make_settings, **kw):  # noqa: ANN001, ANN201
    app = TextGenApp(make_settings(**kw))
    port = await app.start()
    return app, port


async def greedy_batch(port: int) -> list[list[int]]:
    """The three prompts at once (they share decoding steps: rows join, leave and are re-packed)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = textgen_pb2_grpc.TextGeneratorStub(ch)
        replies = await asyncio.gather(*(stub.Generate(pb.GenerateRequest(
            messages=[pb.ChatMessage(role="user", content=p)], max_new_tokens=n, temperature=0, logprobs=True))
            for p, n in zip(PROMPTS, (48, 20, 36))))
    return [[t.id for t in r.tokens] for r in replies]


async def test_greedy_tokens_are_the_same_with_the_cache_bound_to_the_device(make_settings):
    numpy_app, numpy_port = await served(make_settings, io_binding="off")
    bound_app, bound_port = await served(make_settings, io_binding="on")
    try:
        assert not numpy_app.pipeline.engine.model.io_binding and bound_app.pipeline.engine.model.io_binding
        expected, got = await greedy_batch(numpy_port), await greedy_batch(bound_port)
        assert [len(t) for t in got] == [len(t) for t in expected] and all(expected)
        assert got == expected
        assert bound_app.pipeline.engine.steps > 0
    finally:
        await numpy_app.stop()
        await bound_app.stop()


async def test_the_float16_build_serves_and_holds_the_float32_quality(make_settings):
    from maas_modelbuild.recipes.smollm2 import HELDOUT

    app, port = await served(make_settings, quantization="fp16")
    try:
        manifest = app.pipeline.model.manifest
        assert manifest["precision"] == "fp16"
        cache_types = {t.datatype for t in app.pipeline.model.inputs if t.name.startswith("past_key_values")}
        assert cache_types == {"FP16"} and app.pipeline.engine.model.kv_dtype.itemsize == 2
        evaluation = manifest["evaluation"]
        assert abs(evaluation["heldout_perplexity_change"]) <= 0.01  # the goal: within +1 % of float32
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = textgen_pb2_grpc.TextGeneratorStub(ch)
            scored = await stub.ScoreText(pb.ScoreTextRequest(text=HELDOUT.read_text()))
            assert scored.model.name == "smollm2-135m-instruct-fp16" and scored.model.precision == "fp16"
            assert scored.model.provider == "CPUExecutionProvider"
            assert scored.perplexity == pytest.approx(evaluation["heldout_perplexity_fp32_onnx"], rel=0.01)
            reply = await stub.Generate(pb.GenerateRequest(prompt="The old piano in the hall", max_new_tokens=8,
                                                           temperature=0))
            assert reply.completion_tokens == 8 and reply.text.strip()
    finally:
        await app.stop()


async def test_auto_precision_is_float16_under_cuda_and_float32_on_the_cpu(make_settings):
    settings = make_settings()
    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    assert settings.quantization == "auto"
    assert settings.served_model() == "smollm2-135m-instruct" + ("-fp16" if cuda else "")
    assert settings.batch_size("CPUExecutionProvider") == 16 and settings.batch_size("CUDAExecutionProvider") == 64
    assert not settings.binds("CPUExecutionProvider") and settings.binds("CUDAExecutionProvider")
