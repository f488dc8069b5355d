"""The music transformer on the CUDA path's code, run here on the CPU provider: the cache bound to the session's
device composes the same pieces as the numpy cache (the engine shared with the text generator, with the bar
clock's own position ids), and the float16 build serves, says so, and holds the float32 model's perplexity."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc

from maas.music.v1 import generator_pb2 as pb
from maas.music.v1 import generator_pb2_grpc
from music_generator.app import MusicGenApp

REPOSITORY = Path(__file__).resolve().parents[3] / "models"


REQUESTS = [dict(style="chorale", key="D minor", bars=4, seed=3), dict(style="folk", bars=3, seed=8),
            dict(style="fiddle", key="G major", bars=2, seed=5)]


async def compose_all(make_music_settings, **kw) -> tuple[MusicGenApp, list[bytes], list]:  # noqa: ANN001
    app = MusicGenApp(make_music_settings(**kw))
    port = await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = generator_pb2_grpc.MusicGeneratorStub(ch)
            replies = await asyncio.gather(*(stub.Compose(pb.ComposeRequest(**r)) for r in REQUESTS))
        return app, [r.midi for r in replies], list(replies)
    finally:
        await app.stop()


async def test_the_same_pieces_with_the_cache_bound_to_the_device(make_music_settings):
    numpy_app, expected, _ = await compose_all(make_music_settings, io_binding="off")
    bound_app, got, replies = await compose_all(make_music_settings, io_binding="on")
    assert bound_app.pipeline.engine.model.io_binding and not numpy_app.pipeline.engine.model.io_binding
    assert all(expected) and got == expected
    assert all(r.model.precision == "fp32" for r in replies)


async def test_the_float16_build_serves_and_holds_the_float32_perplexity(make_music_settings):
    manifest = json.loads((REPOSITORY / "music-transformer-fp16" / "1" / "manifest.json").read_text())
    assert manifest["precision"] == "fp16"
    assert abs(manifest["evaluation"]["heldout_perplexity_change"]) <= 0.01
    base = json.loads((REPOSITORY / "music-transformer" / "1" / "manifest.json").read_text())
    # the same held-out pieces as the float32 build's own evaluation (PyTorch), and the ONNX float32 graph agrees
    assert manifest["evaluation"]["heldout_pieces"] == base["evaluation"]["heldout"]["pieces"]
    assert abs(manifest["evaluation"]["heldout_perplexity_fp32_onnx"] / base["evaluation"]["heldout"]["perplexity"]
               - 1) < 0.01
    app, midis, replies = await compose_all(make_music_settings, quantization="fp16")
    assert app.pipeline.engine.model.kv_dtype.itemsize == 2
    assert all(midis) and all(r.model.name == "music-transformer-fp16" and r.model.precision == "fp16"
                              for r in replies)
