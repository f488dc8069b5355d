"""Standard MIDI files in and out, with mido (pure Python: a hostile primer raises, it cannot crash the server)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import mido

from music_generator.vocab import TICKS_PER_QUARTER, Note


class MidiError(ValueError):
    """The bytes are not a MIDI file this service can continue (the message says why)."""


@dataclass(frozen=True)
class Primer:
    notes: list[tuple[float, float, int]]  # (onset, duration, pitch) in quarter notes
    time_signature: tuple[int, int] | None
    tempo_bpm: float | None
    program: int | None


def read_primer(data: bytes, *, max_notes: int, max_quarters: float = 4096) -> Primer:
    """Every note-on/off pair of every non-drum channel, merged; the first time signature, tempo and program. At
    most ``max_notes`` notes (re-struck ones count) within ``max_quarters`` quarter notes from the start."""
    try:
        mid = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - mido raises many types on bad bytes; all mean "not MIDI"
        raise MidiError(f"not a standard MIDI file ({type(e).__name__}: {e})"[:300]) from None
    if mid.type == 2:
        raise MidiError("MIDI type 2 (independent sequences) is not supported")
    tpq = mid.ticks_per_beat
    if not tpq or tpq <= 0:
        raise MidiError("SMPTE time division is not supported: use ticks per quarter note")
    ts: tuple[int, int] | None = None
    bpm: float | None = None
    program: int | None = None
    notes: list[tuple[float, float, int]] = []
    limit = max_quarters * tpq
    for track in mid.tracks:
        now = 0
        sounding: dict[tuple[int, int], int] = {}
        for msg in track:
            now += msg.time
            if now > limit and msg.type in ("note_on", "note_off"):
                raise MidiError(f"a note event at quarter note {now / tpq:.0f}; a primer spans at most "
                                f"{max_quarters:g} quarter notes")
            if msg.type == "time_signature" and ts is None:
                ts = (msg.numerator, msg.denominator)
            elif msg.type == "set_tempo" and bpm is None:
                if msg.tempo <= 0:
                    raise MidiError("set_tempo of 0 microseconds a quarter note is not a tempo")
                bpm = mido.tempo2bpm(msg.tempo)
            elif msg.type == "program_change" and program is None and msg.channel != 9:
                program = msg.program
            elif msg.type in ("note_on", "note_off") and msg.channel != 9:
                k = (msg.channel, msg.note)
                if msg.type == "note_on" and msg.velocity > 0:
                    if k in sounding and now > sounding[k]:  # struck again while sounding: the first one ends here
                        notes.append((sounding[k] / tpq, (now - sounding[k]) / tpq, msg.note))
                    sounding[k] = now
                elif k in sounding:
                    start = sounding.pop(k)
                    if now > start:
                        notes.append((start / tpq, (now - start) / tpq, msg.note))
                if len(notes) > max_notes:
                    raise MidiError(f"more than {max_notes} notes: send a shorter primer")
    notes.sort()
    return Primer(notes, ts, bpm, program)


def write_midi(notes: Sequence[Note], *, tempo_bpm: float, time_signature: tuple[int, int], program: int,
               velocities: Sequence[int], title: str = "") -> bytes:
    """One track on channel 0 (channel 9 is drums in General MIDI): tempo, meter, program, the notes."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events: list[tuple[int, int, mido.Message]] = []
    # One channel cannot hold two notes of one pitch at once: two voices in unison sound as one note (the longer),
    # and a note ends where the same pitch is struck again.
    longest: dict[tuple[int, int], int] = {}  # (pitch, onset tick) -> the note kept
    for i, n in enumerate(notes):
        at = (n.pitch, int(round(n.start * TICKS_PER_QUARTER)))
        if at not in longest or n.duration > notes[longest[at]].duration:
            longest[at] = i
    kept = sorted(longest.values())
    next_onset: dict[int, int] = {}
    offs: dict[int, int] = {}
    for i in sorted(kept, key=lambda i: notes[i].start, reverse=True):
        n = notes[i]
        on = int(round(n.start * TICKS_PER_QUARTER))
        offs[i] = min(int(round((n.start + n.duration) * TICKS_PER_QUARTER)), next_onset.get(n.pitch, 1 << 62))
        next_onset[n.pitch] = on
    for i in kept:
        n, vel = notes[i], velocities[i]
        on = int(round(n.start * TICKS_PER_QUARTER))
        off = max(on + 1, offs[i])
        events.append((on, 1, mido.Message("note_on", note=n.pitch, velocity=vel, channel=0)))
        events.append((off, 0, mido.Message("note_off", note=n.pitch, velocity=0, channel=0)))
    events.sort(key=lambda e: (e[0], e[1]))  # at one tick, offs before ons (a repeated note re-strikes)
    if title:
        track.append(mido.MetaMessage("track_name", name=title[:120], time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=time_signature[0],
                                  denominator=time_signature[1], time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()
