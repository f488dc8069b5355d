"""Discovery over reflection, request strategies from descriptors, and the fuzzing loop (see the package doc)."""

from __future__ import annotations

import io
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

SKIPPED_SERVICES = ("grpc.reflection.", "grpc.health.")  # the frameworks' own (health is checked after each RPC)
FAULT_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE)
# Strings the suite knows, so drawn requests get past the first check and reach the code behind it.
VOCABULARY = ["", "folk", "chorale", "fiddle", "renaissance", "D minor", "C major", "Bb major", "F# minor", "3/4",
              "6/8", "4/4", "7/0", "user", "system", "assistant", "text-encoder", "sentiment", "creative-labels",
              "ner", "smollm2-135m-instruct", "music-transformer", "music-recommender", "m21:bach/bwv66.6.mxl",
              "alice", "happy", "sad", "mood", "genre", "This text is {}.", "{}{}", "input_ids", "attention_mask",
              "embeddings", "logits", "FP32", "FP16", "INT64", "BYTES", "BF16", "1", "0", "-1", "bach", "like",
              "Taylor Swift played Wembley Stadium in London", "I love this record!", "\n\n", "<|im_end|>"]


# ---- discovery ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    service: str
    name: str
    descriptor: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    @property
    def request(self) -> type:
        return message_factory.GetMessageClass(self.descriptor.input_type)

    @property
    def response(self) -> type:
        return message_factory.GetMessageClass(self.descriptor.output_type)


def discover(channel: grpc.Channel) -> list[Method]:
    """Every method of every service the target lists over reflection (its own health and reflection aside)."""
    db = ProtoReflectionDescriptorDatabase(channel)
    pool = DescriptorPool(db)
    methods = []
    for name in sorted(db.get_services()):
        if name.startswith(SKIPPED_SERVICES):
            continue
        for m in pool.FindServiceByName(name).methods:
            methods.append(Method(name, m.name, m))
    return methods


# ---- strategies --------------------------------------------------------------------------------------------
def strings() -> st.SearchStrategy[str]:
    """The suite's words (4 in 10), short text (3 in 10), longer text (2 in 10), a huge run of one character."""
    vocabulary, short = st.sampled_from(VOCABULARY), st.text(max_size=40)
    medium = st.text(min_size=200, max_size=2000)
    huge = st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "🎵", "\n", "\x00", "{", ".", "-"]),
                     st.sampled_from([1000, 20_000, 100_001]))
    return st.integers(0, 9).flatmap(lambda i: vocabulary if i < 4 else short if i < 7 else medium if i < 9 else huge)


def integers(bits: int, signed: bool) -> st.SearchStrategy[int]:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    edges = [e for e in (0, 1, 2, 3, 8, 16, 64, 1000, 10**6, -1, lo, hi, lo + 1, hi - 1) if lo <= e <= hi]
    return st.one_of(st.sampled_from(edges), st.integers(0, 40), st.integers(lo, hi))


def floats(width: int) -> st.SearchStrategy[float]:
    edges = [0.0, -0.0, 0.5, 1.0, 2.0, -1.0, 1e-30, 1e30, math.nan, math.inf, -math.inf]
    return st.one_of(st.sampled_from(edges), st.floats(width=width))


def midi_file(tracks: list[list[Any]], ticks: int = 480, kind: int = 1) -> bytes:
    import mido

    mid = mido.MidiFile(type=kind, ticks_per_beat=ticks)
    for events in tracks:
        mid.tracks.append(mido.MidiTrack(events))
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def hostile_midi() -> st.SearchStrategy[bytes]:
    """Standard MIDI files built to hurt a parser or what follows it."""
    import mido

    def notes(n: int, gap: int, restrike: bool = False, pitch: int = 60, channel: int = 0) -> list:
        out = []
        for _ in range(n):
            out.append(mido.Message("note_on", note=pitch, velocity=80, time=gap, channel=channel))
            if not restrike:
                out.append(mido.Message("note_off", note=pitch, velocity=0, time=gap, channel=channel))
        return out

    cases = [
        st.builds(lambda n: midi_file([[mido.MetaMessage("set_tempo", tempo=0), *notes(n, 120)]]), st.integers(0, 8)),
        st.builds(lambda d: midi_file([[*notes(2, 120), mido.Message("note_on", note=64, velocity=90, time=d),
                                        mido.Message("note_off", note=64, velocity=0, time=10)]]),
                  st.sampled_from([10**6, 10**8, (1 << 28) - 1])),
        st.builds(lambda n: midi_file([notes(n, 1, restrike=True)]), st.sampled_from([10, 3000, 20_000])),
        st.builds(lambda n, cut: midi_file([notes(n, 60)])[:cut], st.integers(1, 50), st.integers(14, 200)),
        st.builds(lambda k: midi_file([notes(3, 60, pitch=40 + i % 50) for i in range(k)]), st.sampled_from([2, 64, 600])),
        st.builds(lambda p: midi_file([notes(6, 100, pitch=p)]), st.sampled_from([0, 1, 126, 127])),
        st.builds(lambda c: midi_file([notes(6, 100, channel=c)]), st.sampled_from([9, 15])),
        st.builds(lambda t: midi_file([notes(4, 100)], ticks=t), st.sampled_from([1, 7, 32767])),
        st.builds(lambda: midi_file([notes(4, 100)], kind=2)),
        st.builds(lambda: midi_file([[mido.MetaMessage("time_signature", numerator=255, denominator=1),
                                      *notes(4, 100)]])),
        st.just(b""), st.just(b"MThd"),
    ]
    return st.one_of(*cases)


def scalar(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return strings()
    if t == FieldDescriptor.TYPE_BYTES:
        if "midi" in f.name:
            return st.one_of(hostile_midi(), st.binary(max_size=300))
        return st.one_of(st.binary(max_size=64), st.binary(min_size=1000, max_size=5000))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return floats(32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    if t == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in f.enum_type.values]), st.integers(-3, 40))
    bits = 64 if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
                       FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64) else 32
    signed = t not in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED32,
                       FieldDescriptor.TYPE_FIXED64)
    return integers(bits, signed)


def messages(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of type ``desc``: each field absent (2 in 3) or drawn, oneofs with at most one member set."""
    cls = message_factory.GetMessageClass(desc)

    @st.composite
    def build(draw: Callable) -> Any:
        msg = cls()
        fields = [f for f in desc.fields if f.containing_oneof is None]
        for oneof in desc.oneofs:
            chosen = draw(st.sampled_from([None, *oneof.fields]))
            if chosen is not None:
                fields.append(chosen)
        for f in fields:
            if draw(st.integers(0, 2)):  # a field is set one time in three: most requests then pass most checks
                continue
            nested = f.message_type
            if nested is not None and depth >= 3:
                continue
            if nested is not None and nested.GetOptions().map_entry:
                key_f, value_f = nested.fields_by_name["key"], nested.fields_by_name["value"]
                target = getattr(msg, f.name)
                for _ in range(draw(st.sampled_from([0, 1, 3]))):
                    key = draw(scalar(key_f))
                    if value_f.message_type is not None:
                        target[key].CopyFrom(draw(messages(value_f.message_type, depth + 1)))
                    else:
                        target[key] = draw(scalar(value_f))
            elif f.is_repeated:
                count = draw(st.sampled_from([0, 1, 2, 5, 70]))
                if nested is not None:
                    for _ in range(min(count, 5) if depth else count):
                        getattr(msg, f.name).add().CopyFrom(draw(messages(nested, depth + 1)))
                else:
                    getattr(msg, f.name).extend(draw(scalar(f)) for _ in range(count))
            elif nested is not None:
                if nested.full_name == "google.protobuf.Timestamp":
                    getattr(msg, f.name).seconds = draw(integers(64, True))
                    getattr(msg, f.name).nanos = draw(integers(32, True))
                else:
                    getattr(msg, f.name).CopyFrom(draw(messages(nested, depth + 1)))
            else:
                setattr(msg, f.name, draw(scalar(f)))
        return msg

    return build()


# ---- the loop ----------------------------------------------------------------------------------------------
@dataclass
class FuzzReport:
    method: str
    sent: int = 0
    codes: Counter = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        codes = ", ".join(f"{c} {n}" for c, n in self.codes.most_common())
        return (f"{self.method:58s} {self.sent:6d} requests {self.seconds:6.1f}s  {codes}"
                + (f"  FAULTS {len(self.faults)}" if self.faults else ""))


def _call(channel: grpc.Channel, method: Method, payload: bytes, timeout: float) -> grpc.StatusCode:
    """Send one serialised request; read a stream's first few answers, then cancel. Returns the status code."""
    identity = lambda b: b  # noqa: E731 - raw bytes both ways
    d = method.descriptor
    try:
        if not d.client_streaming and not d.server_streaming:
            channel.unary_unary(method.path, identity, identity)(payload, timeout=timeout)
        elif not d.client_streaming:
            call = channel.unary_stream(method.path, identity, identity)(payload, timeout=timeout)
            for i, _ in enumerate(call):
                if i >= 4:
                    call.cancel()
                    return grpc.StatusCode.OK
        else:
            stub = channel.stream_stream(method.path, identity, identity) if d.server_streaming else \
                channel.stream_unary(method.path, identity, identity)
            call = stub(iter([payload, payload]), timeout=timeout)
            if d.server_streaming:
                for i, _ in enumerate(call):
                    if i >= 4:
                        call.cancel()
                        break
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
        if code == grpc.StatusCode.CANCELLED:
            return grpc.StatusCode.OK
        if code in FAULT_CODES:
            raise Fault(f"{code.name}: {(err.details() or '')[:200]}") from None
        return code


class Fault(Exception):
    pass


def healthy(channel: grpc.Channel) -> bool:
    try:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
    except grpc.RpcError:
        return False
    return status == health_pb2.HealthCheckResponse.SERVING


def fuzz(channel: grpc.Channel, method: Method, examples: int, timeout: float = 10.0) -> FuzzReport:
    """``examples`` requests to ``method``, one in ten raw garbage bytes, the rest drawn from its descriptor;
    faults are recorded, never raised."""
    report = FuzzReport(method.path)
    started = time.monotonic()
    drawn = messages(method.descriptor.input_type).map(lambda m: m.SerializeToString())
    requests = st.integers(0, 9).flatmap(lambda i: st.binary(max_size=200) if i == 0 else drawn)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(requests)
    def one(payload: bytes) -> None:
        report.sent += 1
        try:
            report.codes[_call(channel, method, payload, timeout).name] += 1
        except Fault as f:
            report.codes["FAULT"] += 1
            if len(report.faults) < 5:
                report.faults.append(f"{f} <- {payload[:80]!r}")

    one()
    if not healthy(channel):
        report.faults.append("the server stopped answering its health check")
    report.seconds = time.monotonic() - started
    return report
