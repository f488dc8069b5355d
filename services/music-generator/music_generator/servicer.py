"""Protobuf <-> domain types for maas.music.v1.MusicGenerator, and nothing else."""

from __future__ import annotations

from typing import AsyncIterator, Sequence

import grpc

from maas.music.v1 import generator_pb2, generator_pb2_grpc
from maas_runtime.generation import FinishReason
from maas_runtime.rpc import deadline, model_info
from music_generator.pipeline import ComposeRequest, Composition, MusicPipeline, Plan
from music_generator.vocab import Note

_FINISH = {FinishReason.EOS: generator_pb2.FINISH_REASON_COMPLETE, FinishReason.STOP: generator_pb2.FINISH_REASON_COMPLETE,
           FinishReason.LENGTH: generator_pb2.FINISH_REASON_LENGTH}


def to_request(msg: generator_pb2.ComposeRequest | generator_pb2.ComposeStreamRequest) -> ComposeRequest:
    return ComposeRequest(
        style=msg.style, key=msg.key,
        tempo_bpm=msg.tempo_bpm if msg.HasField("tempo_bpm") else None,
        bars=msg.bars,
        temperature=msg.temperature if msg.HasField("temperature") else None,
        top_p=msg.top_p if msg.HasField("top_p") else None,
        seed=msg.seed if msg.HasField("seed") else None,
        primer_midi=msg.primer_midi,
        program=msg.program if msg.HasField("program") else None,
        time_signature=msg.time_signature, chromatic=msg.chromatic,
        audio=msg.render.audio, piano_roll=msg.render.piano_roll, sample_rate=msg.render.sample_rate)


def plan_pb(plan: Plan, chromatic: bool) -> generator_pb2.CompositionPlan:
    return generator_pb2.CompositionPlan(
        style=plan.style, key=str(plan.key), tempo_bpm=plan.tempo_bpm,
        time_signature=f"{plan.time_signature[0]}/{plan.time_signature[1]}", program=plan.program, seed=plan.seed,
        temperature=plan.temperature, top_p=plan.top_p, bars=plan.bars, primer_bars=plan.primer_bars,
        chromatic=chromatic)


def notes_pb(notes: Sequence[Note], velocities: Sequence[int], tempo_bpm: float,
             primer: int = 0) -> list[generator_pb2.ComposedNote]:
    spb = 60.0 / tempo_bpm
    return [generator_pb2.ComposedNote(pitch=n.pitch, start_beats=n.start, end_beats=n.start + n.duration,
                                       start_seconds=n.start * spb, end_seconds=(n.start + n.duration) * spb,
                                       velocity=v, track=0, bar=n.bar, from_primer=i < primer)
            for i, (n, v) in enumerate(zip(notes, velocities))]


class MusicGeneratorServicer(generator_pb2_grpc.MusicGeneratorServicer):
    def __init__(self, pipeline: MusicPipeline) -> None:
        self.pipeline = pipeline

    def _response(self, c: Composition, chromatic: bool) -> generator_pb2.ComposeResponse:
        return generator_pb2.ComposeResponse(
            midi=c.midi, notes=notes_pb(c.notes, c.velocities, c.plan.tempo_bpm, len(c.plan.primer_notes)),
            plan=plan_pb(c.plan, chromatic), bars=c.bars, duration_seconds=c.duration_seconds,
            finish_reason=_FINISH[c.finish_reason], tokens=c.tokens, wav=c.wav, piano_roll_png=c.png,
            model=model_info(self.pipeline.model))

    async def Compose(self, request: generator_pb2.ComposeRequest,
                      context: grpc.aio.ServicerContext) -> generator_pb2.ComposeResponse:
        return self._response(await self.pipeline.compose(to_request(request), deadline(context)), request.chromatic)

    async def ComposeStream(self, request: generator_pb2.ComposeStreamRequest,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[generator_pb2.ComposeStreamResponse]:
        stream = self.pipeline.stream(to_request(request), deadline(context))
        sent = 0
        primer = 0
        tempo = 120.0
        try:
            async for event in stream:
                if event.plan is not None:
                    primer, tempo = len(event.plan.primer_notes), event.plan.tempo_bpm
                    yield generator_pb2.ComposeStreamResponse(plan=plan_pb(event.plan, request.chromatic))
                elif event.done is not None:
                    yield generator_pb2.ComposeStreamResponse(done=self._response(event.done, request.chromatic))
                elif event.notes:
                    batch = notes_pb(event.notes, event.velocities, tempo, max(0, primer - sent))
                    sent += len(event.notes)
                    yield generator_pb2.ComposeStreamResponse(notes=generator_pb2.NoteBatch(notes=batch))
        finally:
            await stream.aclose()  # a cancelled call takes its request out of the batch at once

    async def ListStyles(self, request: generator_pb2.ListStylesRequest,
                         context: grpc.aio.ServicerContext) -> generator_pb2.ListStylesResponse:
        styles = []
        for name, s in self.pipeline.styles.items():
            ts = s["time_signature"]
            styles.append(generator_pb2.StyleInfo(
                name=name, time_signature=f"{ts[0]}/{ts[1]}", tempo_bpm=s["tempo_bpm"], program=s["program"],
                common_keys=list(s["keys"])[:6], pieces=s["pieces"], lowest_pitch=s["pitch_range"][0],
                highest_pitch=s["pitch_range"][1]))
        return generator_pb2.ListStylesResponse(styles=styles, model=model_info(self.pipeline.model))
