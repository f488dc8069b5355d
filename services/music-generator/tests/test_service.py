"""music-generator end to end through a real aio server on 127.0.0.1:0 with the model `make models` trained."""

import asyncio
import io
import random
import struct
import time

import grpc
import mido
import pretty_midi
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from maas.music.v1 import generator_pb2 as pb
from maas.music.v1 import generator_pb2_grpc
from maas_runtime.testing import violations
from music_generator.app import MusicGenApp
from music_generator.vocab import parse_key


@pytest.fixture
def stub(music_channel):
    return generator_pb2_grpc.MusicGeneratorStub(music_channel)




def midi_notes(midi: bytes) -> list[tuple[int, float]]:
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    return sorted((n.pitch, round(n.start, 3)) for i in pm.instruments for n in i.notes)


async def test_health_reflection_and_styles(music_channel, stub):
    health = health_pb2_grpc.HealthStub(music_channel)
    for name in ("", "maas.music.v1.MusicGenerator"):
        resp = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(music_channel)
    names = set()
    async for r in refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
        names |= {s.name for s in r.list_services_response.service}
    assert "maas.music.v1.MusicGenerator" in names
    styles = await stub.ListStyles(pb.ListStylesRequest())
    assert {s.name for s in styles.styles} == {"chorale", "folk", "fiddle", "renaissance"}
    assert all(s.pieces > 100 and s.common_keys and s.lowest_pitch < s.highest_pitch for s in styles.styles)
    assert styles.model.name == "music-transformer"


async def test_compose_gives_midi_notes_and_what_was_used(stub):
    r = await stub.Compose(pb.ComposeRequest(style="chorale", key="D minor", tempo_bpm=90, bars=4, seed=11))
    assert r.plan.key == "D minor" and r.plan.tempo_bpm == 90 and r.plan.seed == 11 and r.plan.style == "chorale"
    assert r.plan.time_signature == "4/4" and r.plan.program == 19  # the style's meter and instrument
    assert r.bars == 4 and r.finish_reason == pb.FINISH_REASON_COMPLETE
    assert r.model.name == "music-transformer" and r.model.version == 1 and r.model.build_key
    assert mido.MidiFile(file=io.BytesIO(r.midi)).length == pytest.approx(r.duration_seconds, abs=0.05)
    # every voice's note; in the MIDI file, two voices in unison sound as one note
    assert midi_notes(r.midi) == sorted({(n.pitch, round(n.start_seconds, 3)) for n in r.notes})
    assert all(0 <= n.bar < 4 and n.start_beats < n.end_beats for n in r.notes)
    assert all(n.start_seconds == pytest.approx(n.start_beats * 60 / 90) for n in r.notes)
    key = parse_key("D minor")
    assert all(n.pitch % 12 in key.pitch_classes() for n in r.notes)
    assert len(r.notes) >= 8 and len({n.pitch for n in r.notes}) >= 4  # music, not one repeated note


async def test_same_seed_same_piece_and_another_seed_another(stub):
    req = dict(style="folk", key="G major", bars=4, temperature=1.0, top_p=0.95)
    a = await stub.Compose(pb.ComposeRequest(seed=5, **req))
    b = await stub.Compose(pb.ComposeRequest(seed=5, **req))
    c = await stub.Compose(pb.ComposeRequest(seed=6, **req))
    assert a.midi == b.midi and a.midi != c.midi
    unseeded = await stub.Compose(pb.ComposeRequest(style="folk", bars=2))
    again = await stub.Compose(pb.ComposeRequest(style="folk", bars=2, seed=unseeded.plan.seed))
    assert again.midi == unseeded.midi and again.plan.key == unseeded.plan.key  # the reported seed reproduces it


async def test_stream_sends_the_plan_then_notes_then_the_same_piece_as_compose(stub):
    req = dict(style="fiddle", key="D major", bars=4, seed=3)
    events = [e async for e in stub.ComposeStream(pb.ComposeStreamRequest(**req))]
    assert events[0].WhichOneof("event") == "plan" and events[-1].WhichOneof("event") == "done"
    streamed = [n for e in events[1:-1] for n in e.notes.notes]
    assert len(events) > 4 and streamed == list(events[-1].done.notes)
    unary = await stub.Compose(pb.ComposeRequest(**req))
    assert unary.midi == events[-1].done.midi


async def test_a_primer_is_continued(stub):
    first = await stub.Compose(pb.ComposeRequest(style="chorale", key="G major", bars=4, seed=21))
    more = await stub.Compose(pb.ComposeRequest(style="chorale", primer_midi=first.midi, bars=3, seed=22))
    assert more.plan.primer_bars == 4 and more.bars == 7
    # the key is read from the primer: G major's scale (a few bars may read as its relative minor, same notes)
    assert more.plan.key in ("G major", "E minor")
    primer = [n for n in more.notes if n.from_primer]  # read back from the MIDI file: unisons are one note there
    assert sorted((n.pitch, n.start_beats) for n in primer) == sorted({(n.pitch, n.start_beats) for n in first.notes})
    assert any(n.bar >= 4 for n in more.notes if not n.from_primer)


async def test_renders_audio_and_a_piano_roll(stub):
    r = await stub.Compose(pb.ComposeRequest(style="folk", bars=2, seed=1, tempo_bpm=120,
                                             render=pb.RenderOptions(audio=True, piano_roll=True,
                                                                     sample_rate=22050)))
    assert r.wav[:4] == b"RIFF" and r.wav[8:12] == b"WAVE"
    channels, rate = struct.unpack("<HI", r.wav[22:28])
    assert rate == 22050
    seconds = (len(r.wav) - 44) / (rate * channels * 2)
    assert r.duration_seconds <= seconds < r.duration_seconds + 4  # the piece plus the release tail
    from music_generator.render import wav_size

    assert abs(wav_size(r.duration_seconds, rate) - len(r.wav)) <= 2 * rate * channels * 2  # the estimate holds
    assert r.piano_roll_png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", r.piano_roll_png[16:24])
    assert width > 100 and height > 40


async def test_a_wav_over_the_message_limit_is_refused_before_it_is_rendered(make_music_settings, monkeypatch):
    from music_generator import render

    def never(*args, **kw):
        raise AssertionError("rendered although the answer could not carry it")

    monkeypatch.setattr(render, "render_wav", never)
    app = MusicGenApp(make_music_settings(max_message_bytes=1 << 20))
    port = await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = generator_pb2_grpc.MusicGeneratorStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Compose(pb.ComposeRequest(style="folk", bars=4, seed=1, tempo_bpm=60,
                                                     render=pb.RenderOptions(audio=True, sample_rate=96000)))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err.value) == ["render.audio"]
            assert "MiB" in err.value.details() and "retry" not in err.value.details()
    finally:
        await app.stop()


async def test_renders_wait_for_a_slot_and_beyond_the_waiting_room_are_refused(make_music_settings):
    from maas_runtime.errors import Overloaded

    app = MusicGenApp(make_music_settings(max_concurrent_renders=1))
    await app.start()
    try:
        pipeline = app.pipeline
        release = asyncio.Event()

        async def hold():
            async with pipeline._render_slot():
                await release.wait()

        running, waiting = asyncio.ensure_future(hold()), asyncio.ensure_future(hold())
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):  # one rendering, one waiting: the next is refused with a retry hint
            async with pipeline._render_slot():
                pass
        release.set()
        await asyncio.gather(running, waiting)
        async with pipeline._render_slot():  # free again
            pass
    finally:
        await app.stop()


@pytest.mark.parametrize("request_,field", [
    (pb.ComposeRequest(style="dubstep"), "style"),
    (pb.ComposeRequest(style="folk", key="H major"), "key"),
    (pb.ComposeRequest(style="folk", key="D minor minor"), "key"),
    (pb.ComposeRequest(style="folk", tempo_bpm=5), "tempo_bpm"),
    (pb.ComposeRequest(style="folk", tempo_bpm=float("nan")), "tempo_bpm"),
    (pb.ComposeRequest(style="folk", bars=33), "bars"),
    (pb.ComposeRequest(style="folk", temperature=0), "temperature"),
    (pb.ComposeRequest(style="folk", temperature=-1), "temperature"),
    (pb.ComposeRequest(style="folk", temperature=float("nan")), "temperature"),
    (pb.ComposeRequest(style="folk", top_p=0), "top_p"),
    (pb.ComposeRequest(style="folk", top_p=1.5), "top_p"),
    (pb.ComposeRequest(style="folk", program=128), "program"),
    (pb.ComposeRequest(style="folk", time_signature="7/7"), "time_signature"),
    (pb.ComposeRequest(style="folk", time_signature="waltz"), "time_signature"),
    (pb.ComposeRequest(style="folk", primer_midi=b"not a midi file"), "primer_midi"),
    (pb.ComposeRequest(style="folk", primer_midi=b"MThd" + b"\0" * 300_000), "primer_midi"),
    (pb.ComposeRequest(style="folk", render=pb.RenderOptions(audio=True, sample_rate=100)), "render.sample_rate"),
])
async def test_bad_input_is_invalid_argument_naming_the_field(stub, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Compose(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(err.value) and field in err.value.details()


async def test_fuzzed_primers_are_refused_and_the_server_keeps_serving(stub):
    good = (await stub.Compose(pb.ComposeRequest(style="folk", bars=4, seed=2))).midi
    rng = random.Random(3)
    cases = [good[:n] for n in range(0, len(good), max(1, len(good) // 25))]
    cases += [bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))) for _ in range(20)]
    for _ in range(20):
        b = bytearray(good)
        for _ in range(4):
            b[rng.randrange(14, len(b))] = rng.getrandbits(8)
        cases.append(bytes(b))
    refused = 0
    for data in cases:
        try:
            r = await stub.Compose(pb.ComposeRequest(style="folk", primer_midi=data, bars=1, seed=1))
            assert pretty_midi.PrettyMIDI(io.BytesIO(r.midi))  # corrupted but still MIDI: a valid continuation
        except grpc.aio.AioRpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err) == ["primer_midi"], data[:40]
            refused += 1
    assert refused >= 40
    ok = await stub.Compose(pb.ComposeRequest(style="folk", bars=1, seed=1))
    assert ok.notes


def hostile_midi(events: list) -> bytes:
    """A one-track MIDI file of ``events`` (mido messages with their delta times)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(mido.MidiTrack(events))
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def notes(n: int, restrike: bool = False) -> list:
    """``n`` notes on pitch 60; re-struck while sounding (no note-off between them) when ``restrike``."""
    events = []
    for _ in range(n):
        events.append(mido.Message("note_on", note=60, velocity=80, time=48 if restrike else 240))
        if not restrike:
            events.append(mido.Message("note_off", note=60, velocity=0, time=240))
    return events


@pytest.mark.parametrize("events, says", [
    ([mido.MetaMessage("set_tempo", tempo=0, time=0), *notes(4)], "set_tempo"),
    ([*notes(2), mido.Message("note_on", note=62, velocity=80, time=480 * 10**6),
      mido.Message("note_off", note=62, velocity=0, time=480)], "quarter notes"),
    (notes(2500, restrike=True), "more than 2000 notes"),
], ids=["tempo-0", "huge-delta-time", "re-struck-notes-over-the-limit"])
async def test_hostile_primers_are_invalid_argument_naming_primer_midi(stub, events, says):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Compose(pb.ComposeRequest(style="folk", primer_midi=hostile_midi(events), bars=1, seed=1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and violations(err.value) == ["primer_midi"]
    assert says in err.value.details()
    assert (await stub.Compose(pb.ComposeRequest(style="folk", bars=1, seed=1))).notes


async def test_a_primer_is_read_off_the_event_loop(stub, music_server):
    """Parsing untrusted MIDI is pure Python: it runs on a worker thread, so a hostile primer cannot stall the
    event loop that serves every other call."""
    import threading

    pipeline = music_server[0].pipeline
    original, threads = pipeline.read_primer, []

    def recording(data):
        threads.append(threading.current_thread())
        return original(data)

    pipeline.read_primer = recording
    try:
        first = await stub.Compose(pb.ComposeRequest(style="folk", bars=2, seed=4))
        more = await stub.Compose(pb.ComposeRequest(style="folk", primer_midi=first.midi, bars=1, seed=5))
        assert more.plan.primer_bars == 2
    finally:
        del pipeline.read_primer
    assert threads and all(t is not threading.main_thread() for t in threads)


async def test_concurrent_requests_share_the_engine_and_each_gets_its_piece(stub, music_server):
    engine = music_server[0].pipeline.engine
    rows = engine.step_rows
    steps = engine.steps
    reqs = [pb.ComposeRequest(style=s, bars=2, seed=i) for i, s in enumerate(["chorale", "folk", "fiddle",
                                                                               "renaissance"] * 2)]
    results = await asyncio.gather(*(stub.Compose(r) for r in reqs))
    assert [r.plan.style for r in results] == [r.style for r in reqs]
    assert all(r.bars == 2 and r.notes for r in results)
    assert (engine.step_rows - rows) / (engine.steps - steps) > 2, "the requests did not share decoding steps"


async def test_cancelling_a_stream_frees_its_slot(stub, music_server):
    engine = music_server[0].pipeline.engine
    call = stub.ComposeStream(pb.ComposeStreamRequest(style="renaissance", bars=32, seed=1))
    await call.read()
    await call.read()
    call.cancel()
    for _ in range(100):
        if engine.running == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.running == 0


async def test_a_deadline_is_honoured(stub, music_server):
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Compose(pb.ComposeRequest(style="renaissance", bars=32, seed=1), timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - started < 5


async def test_the_built_model_meets_its_measured_quality(music_server):
    """The figures `make models` measured on 100 generated pieces per style (see the manifest)."""
    ev = music_server[0].pipeline.model.manifest["evaluation"]
    gen = ev["generation"]
    assert gen["parse_rate_mido"] == 1.0 and gen["parse_rate_pretty_midi"] == 1.0
    for style, s in gen["styles"].items():
        assert s["in_key_share_served"] >= 0.95 and s["same_seed_same_midi"], style
    assert ev["heldout"]["perplexity"] < 10  # vs ~330 tokens: the model learned the music
