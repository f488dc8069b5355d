"""The model work of music-generator in plain Python: validation, conditioning, the shared generation engine
with the REMI grammar, notes, MIDI and renders. No gRPC here.

The model's manifest says what it was trained on (styles with their meter, tempo, instrument, pitch range and
key distribution; the miditok tokenizer file); the pipeline only follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import numpy as np

from maas_runtime.errors import FieldViolation, InvalidArgument, Overloaded, quote
from maas_runtime.generation import DecoderModel, FinishReason, GenerationEngine, SamplingParams
from maas_runtime.onnx_model import OnnxModel
from music_generator import render
from music_generator.midi import MidiError, Primer, read_primer, write_midi
from music_generator.settings import MusicGenSettings
from music_generator.vocab import (BarClock, Grammar, Key, Note, NoteReader, Vocabulary, canonical_key,
                                   canonical_shift, estimate_key, make_tokenizer, parse_key, tempo_bucket)

MAX_SEED = 2**64 - 1
BASE_VELOCITY, DOWNBEAT_VELOCITY = 78, 92


@dataclass(frozen=True)
class ComposeRequest:
    style: str
    key: str = ""
    tempo_bpm: float | None = None
    bars: int = 0  # 0: the default
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    primer_midi: bytes = b""
    program: int | None = None
    time_signature: str = ""
    chromatic: bool = False
    audio: bool = False
    piano_roll: bool = False
    sample_rate: int = 0  # 0: 44100


@dataclass(frozen=True)
class Plan:
    """What a request resolved to: everything the answer reports as 'actually used'."""

    style: str
    key: Key
    tempo_bpm: float
    time_signature: tuple[int, int]
    bars: int  # new bars to compose
    program: int
    seed: int
    temperature: float
    top_p: float
    prompt: list[int]  # conditioning prefix + body
    body: list[int]  # the primer's tokens (empty without a primer)
    primer_notes: list[Note]
    primer_bars: int
    grammar: Grammar
    shift: int  # semitones from the requested key to where the model composes (C major / A minor)


@dataclass
class Composition:
    plan: Plan
    notes: list[Note]  # primer notes first, then the composed ones
    velocities: list[int]
    midi: bytes
    bars: int  # bars in the piece (primer + composed)
    finish_reason: FinishReason
    tokens: int
    wav: bytes = b""
    png: bytes = b""

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.plan.tempo_bpm

    @property
    def duration_seconds(self) -> float:
        end = max((n.start + n.duration for n in self.notes), default=0.0)
        return end * self.seconds_per_beat


@dataclass
class ComposeEvent:
    """A streamed event: the plan first, then notes as they are decoded, then the finished composition."""

    plan: Plan | None = None
    notes: list[Note] = field(default_factory=list)
    velocities: list[int] = field(default_factory=list)
    done: Composition | None = None


def moved(note: Note, semitones: int) -> Note:
    return Note(note.pitch + semitones, note.start, note.duration, note.bar)


def velocity(note: Note, bar_beats: float) -> int:
    return DOWNBEAT_VELOCITY if abs(note.start - note.bar * bar_beats) < 1e-6 else BASE_VELOCITY


class MusicPipeline:
    def __init__(self, model: OnnxModel, settings: MusicGenSettings) -> None:
        self.model = model
        self.settings = settings
        manifest = model.manifest
        self.vocab = Vocabulary(make_tokenizer(str(model.directory / manifest["tokenizer"])))
        self.styles: dict[str, dict[str, Any]] = manifest["styles"]
        decoder = DecoderModel(model, io_binding=settings.binds(model.provider))
        if decoder.vocab_size != self.vocab.size:
            raise ValueError(f"model {model.name}: {decoder.vocab_size} logits but {self.vocab.size} tokens")
        self.context_length = decoder.context_length
        self.engine = GenerationEngine(decoder, model.executor, max_batch_size=settings.batch_size(model.provider),
                                       max_queue_size=settings.max_queue_size,
                                       max_queue_wait_s=settings.max_queue_wait_s)
        self._renders = asyncio.Semaphore(settings.max_concurrent_renders)  # FluidSynth processes, piano rolls
        self._render_waiting = 0

    async def warmup(self) -> None:
        style = next(iter(self.styles))
        await self.compose(ComposeRequest(style=style, bars=1, seed=0))
        self.model.ready = True

    async def close(self) -> None:
        await self.engine.close()

    # ---- validation and conditioning ---------------------------------------------------------------
    def read_primer(self, data: bytes) -> Primer | MidiError:
        """The primer's notes, or why it cannot be continued (pure Python on untrusted bytes: run it off the
        event loop, as ``stream`` does)."""
        s = self.settings
        try:
            primer = read_primer(data, max_notes=s.max_primer_notes, max_quarters=s.max_primer_quarters)
        except MidiError as e:
            return e
        return primer if primer.notes else MidiError("it has no notes to continue")

    def plan(self, req: ComposeRequest, primer_read: Primer | MidiError | None = None) -> Plan:
        """Validate (INVALID_ARGUMENT naming every bad field) and resolve the request (``primer_read``: what
        ``read_primer`` made of its primer, when already read)."""
        s = self.settings
        bad: list[FieldViolation] = []

        def check(ok: bool, name: str, why: str) -> None:
            if not ok:
                bad.append(FieldViolation(name, why))

        style = self.styles.get(req.style)
        check(style is not None, "style", f"unknown style {quote(req.style)}; one of {', '.join(self.styles)}")
        key: Key | None = None
        if req.key:
            try:
                key = parse_key(req.key)
            except ValueError:
                bad.append(FieldViolation("key", f"{quote(req.key)} is not a key: write a note name and a mode, "
                                                 "e.g. 'D minor' or 'Bb major'"))
        check(req.tempo_bpm is None or (math.isfinite(req.tempo_bpm)
                                        and s.min_tempo_bpm <= req.tempo_bpm <= s.max_tempo_bpm),
              "tempo_bpm", f"is {req.tempo_bpm}; must be {s.min_tempo_bpm:g} .. {s.max_tempo_bpm:g}")
        bars = req.bars or s.default_bars
        check(1 <= bars <= s.max_bars, "bars", f"is {req.bars}; must be 1 .. {s.max_bars} (0: {s.default_bars})")
        temperature = s.default_temperature if req.temperature is None else req.temperature
        check(math.isfinite(temperature) and 0 < temperature <= 10, "temperature",
              f"is {temperature}; must be a number in (0, 10]")
        top_p = s.default_top_p if req.top_p is None else req.top_p
        check(math.isfinite(top_p) and 0 < top_p <= 1, "top_p", f"is {top_p}; must be in (0, 1]")
        check(req.seed is None or 0 <= req.seed <= MAX_SEED, "seed", "must be an unsigned 64-bit integer")
        check(req.program is None or 0 <= req.program <= 127, "program",
              f"is {req.program}; a General MIDI program is 0 .. 127")
        check(req.sample_rate == 0 or 8000 <= req.sample_rate <= 96000, "render.sample_rate",
              f"is {req.sample_rate}; must be 8000 .. 96000 (0: 44100)")
        ts: tuple[int, int] | None = None
        if req.time_signature:
            try:
                num, den = (int(x) for x in req.time_signature.split("/"))
                ts = (num, den)
                self.vocab.time_signature_id(ts)
            except ValueError as e:
                msg = str(e) if ts else f"{quote(req.time_signature)} is not a time signature like '3/4'"
                bad.append(FieldViolation("time_signature", msg))
        primer = None
        if req.primer_midi:
            if len(req.primer_midi) > s.max_primer_bytes:
                bad.append(FieldViolation("primer_midi", f"is {len(req.primer_midi)} bytes; at most {s.max_primer_bytes}"))
            else:
                read = primer_read if primer_read is not None else self.read_primer(req.primer_midi)
                if isinstance(read, MidiError):
                    bad.append(FieldViolation("primer_midi", str(read)))
                else:
                    primer = read
        if bad:
            raise InvalidArgument(bad[0].field, bad[0].description, *bad[1:])
        assert style is not None

        seed = req.seed if req.seed is not None else secrets.randbits(63)
        rng = np.random.default_rng(seed)
        if primer is not None and ts is None and primer.time_signature in self.vocab.time_signatures:
            ts = primer.time_signature
        ts = ts or tuple(style["time_signature"])
        tempo = req.tempo_bpm or (primer.tempo_bpm if primer and primer.tempo_bpm else None) or style["tempo_bpm"]
        tempo = float(min(max(tempo, s.min_tempo_bpm), s.max_tempo_bpm))
        if key is None and primer is not None:
            key = estimate_key([p for _, _, p in primer.notes], [d for _, d, _ in primer.notes])
        if key is None:  # drawn from the style's keys, by the seed (so the seed reproduces it)
            names, weights = zip(*style["keys"].items())
            key = parse_key(names[int(rng.choice(len(names), p=np.asarray(weights) / sum(weights)))])
        program = req.program if req.program is not None else (
            primer.program if primer and primer.program is not None else int(style["program"]))

        shift = canonical_shift(key)
        body: list[int] = []
        primer_notes: list[Note] = []
        if primer is not None:
            body = self.vocab.encode_notes([(on, d, p + shift) for on, d, p in primer.notes], ts)
            primer_notes = [moved(n, -shift) for n in self.vocab.decode(body, ts)]
            if not primer_notes:
                raise InvalidArgument("primer_midi", "none of its notes fit the model's range")
        primer_bars = self.vocab.bars_in(body)
        model_key = canonical_key(key.mode)
        prefix = self.vocab.prefix(req.style, model_key, tempo_bucket(tempo), primer_bars + bars)
        prompt = prefix + body
        if len(prompt) > self.context_length // 2:
            raise InvalidArgument("primer_midi", f"is {len(body)} tokens long; at most {self.context_length // 2 - len(prefix)}")
        lo, hi = style["pitch_range"]
        grammar = Grammar.after(self.vocab, body, ts, primer_bars + bars, key=None if req.chromatic else model_key,
                                pitch_range=(int(lo), int(hi)))
        return Plan(req.style, key, tempo, ts, bars, program, seed, temperature, top_p, prompt, body, primer_notes,
                    primer_bars, grammar, shift)

    # ---- composing ---------------------------------------------------------------------------------
    async def stream(self, req: ComposeRequest, deadline: float | None = None) -> AsyncIterator[ComposeEvent]:
        """The plan, then notes as they are decoded, then the composition (MIDI and renders). Closing the
        iterator (a cancelled call) takes the request out of the batch at once."""
        self.engine.admit()  # under overload, refuse before the primer is read and the request planned
        primer = None
        if req.primer_midi and len(req.primer_midi) <= self.settings.max_primer_bytes:
            primer = await asyncio.to_thread(self.read_primer, req.primer_midi)  # never on the event loop
        plan = self.plan(req, primer)
        bar_beats = plan.time_signature[0] * 4.0 / plan.time_signature[1]
        yield ComposeEvent(plan=plan)
        notes = list(plan.primer_notes)
        velocities = [velocity(n, bar_beats) for n in notes]
        if notes:
            yield ComposeEvent(notes=list(notes), velocities=list(velocities))
        reader = NoteReader(self.vocab, plan.time_signature)
        for t in plan.body:  # the reader continues where the primer stops
            reader.feed(t)
        params = SamplingParams(max_new_tokens=self.context_length, temperature=plan.temperature, top_p=plan.top_p,
                                seed=plan.seed, stop_token_ids=(self.vocab.eos,))
        generation = self.engine.generate(plan.prompt, params, deadline=deadline, processor=plan.grammar,
                                          positions=BarClock(self.vocab, plan.time_signature))
        tokens = 0
        reason = FinishReason.LENGTH
        async with generation:
            async for event in generation:
                tokens += 1
                new = [moved(n, -plan.shift) for n in reader.feed(event.token_id)]
                if new:
                    vel = [velocity(n, bar_beats) for n in new]
                    notes += new
                    velocities += vel
                    yield ComposeEvent(notes=new, velocities=vel)
                if event.finish_reason is not None:
                    reason = event.finish_reason
        bars = max(plan.grammar.bars_done, plan.primer_bars)
        midi = write_midi(notes, tempo_bpm=plan.tempo_bpm, time_signature=plan.time_signature, program=plan.program,
                          velocities=velocities, title=f"{plan.style} in {plan.key}")
        done = Composition(plan, notes, velocities, midi, bars, reason, tokens)
        if req.audio:
            s = self.settings
            if done.duration_seconds > s.max_render_seconds:
                raise InvalidArgument("render.audio", f"the piece lasts {done.duration_seconds:.0f}s; audio is "
                                                      f"rendered up to {s.max_render_seconds:.0f}s")
            rate = req.sample_rate or 44100
            wav_bytes = render.wav_size(done.duration_seconds, rate)
            if wav_bytes + len(midi) > s.max_message_bytes:  # known before rendering: refuse now, no retry helps
                raise InvalidArgument("render.audio", f"its WAV would be about {wav_bytes / 2**20:.1f} MiB at "
                                                      f"{rate} Hz; an answer holds at most "
                                                      f"{s.max_message_bytes / 2**20:.0f} MiB: ask for fewer bars or "
                                                      "a lower render.sample_rate")
            async with self._render_slot():
                done.wav = await render.render_wav(midi, fluidsynth=s.fluidsynth, soundfont=s.soundfont,
                                                   sample_rate=rate, timeout_s=s.render_timeout_s)
        if req.piano_roll:
            async with self._render_slot():
                done.png = await self.model.executor.run(
                    lambda: render.piano_roll_png(notes, bars=bars, bar_beats=bar_beats,
                                                  primer_notes=len(plan.primer_notes)))
        yield ComposeEvent(done=done)

    @contextlib.asynccontextmanager
    async def _render_slot(self) -> AsyncIterator[None]:
        """One of ``max_concurrent_renders`` rendering slots; RESOURCE_EXHAUSTED when as many again already wait."""
        if self._renders.locked() and self._render_waiting >= self.settings.max_concurrent_renders:
            raise Overloaded(f"{self._render_waiting} renders waiting", retry_after_s=1.0)
        self._render_waiting += 1
        try:
            await self._renders.acquire()
        finally:
            self._render_waiting -= 1
        try:
            yield
        finally:
            self._renders.release()

    async def compose(self, req: ComposeRequest, deadline: float | None = None) -> Composition:
        stream = self.stream(req, deadline)
        try:
            async for event in stream:
                if event.done is not None:
                    return event.done
        finally:
            await stream.aclose()
        raise RuntimeError("the composition stream ended without a result")
