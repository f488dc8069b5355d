"""The music model's vocabulary and grammar, shared by its build (``maas_modelbuild``) and the server.

Notes are miditok REMI tokens (``Bar``, ``TimeSig_6/8``, ``Position_p``, ``Pitch_n``, ``Duration_b.s.r``; no
velocities: the corpus has none), one merged stream for all voices. Conditioning tokens are appended after
miditok's vocabulary, and every sequence starts with them::

    BOS Style_chorale Key_9_minor Tempo_moderate Bars_16 Start_piece | Bar TimeSig_4/4 Position_0 Pitch_57 ...

Keys are learned in one place: every piece is transposed to C major or A minor (by at most a tritone) before
training, the key token saying the mode; a request for D minor is composed in A minor and moved up a fifth
(``canonical_shift``). The model thus spends its training on music, not on learning each pattern in 12 keys.

``Start_mid`` marks a training window cut from inside a piece (generation always asks for ``Start_piece``).
``Bars_n`` is how many bars remain to the end of the piece (capped). Positions and durations count the time
signature's beats (eighths in 6/8), ``resolution`` steps per beat.

One change to miditok's REMI: a ``Position_d`` token is relative. The first onset of a bar is ``d`` steps after
the bar line; every later one ``d`` steps after the onset before it. In legato music ``d`` is the duration of the
note just played, a token the model has just seen, where REMI's absolute positions would ask a small model to
add the last position and duration (measured: it gave the true next absolute position 34 % probability).
The price is that the model loses count of where a bar ends: left alone it ended two bars in three before their
last beat, on a rest, where held-out bars of every style sound to their end (all but 7 % of folk bars). So the
grammar lets a bar end only once its notes reach its end. (Absolute positions, with the same rule, were tried and
were worse: held-out perplexity 6.1 against 4.5, and about half the notes a bar the corpus has.)

The model is also told where each token falls in the bar and how many notes sound there (``BarClock``): its
position ids are ``index + INDEX_SPAN * (slot + bar_slots * voices)``, and its position embedding is the sum of
one for each part: the index in the sequence; the slot, which says which bar of a four-bar group the token is
in and which onset of the bar (or the bar line) it belongs to, in the piece's meter; and how many notes sound at
that onset so far, those held from before and those struck there (capped at ``VOICES - 1``). A relative
``Position_d`` then no longer asks the model to count where it is, nor a merged stream of voices to recount
which voices are still sounding: the engine numbers every token this way as it feeds it. (Measured: held-out
perplexity 4.5 without either, 3.7 with the slot, 3.25 with both.)

``Grammar`` is a ``LogitsProcessor``: it allows only tokens that keep the stream well formed (onsets moving on
inside a bar, a duration after every pitch, an onset's pitches from low to high (two voices may share one, as
in 15 % of the corpus's chorale onsets), the requested meter, a bar ending only once its notes sound to its
end, exactly the requested number of bars, then EOS), pitches inside a range, and, when asked, only pitches of
the requested key's scale.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

STYLES = ("chorale", "folk", "fiddle", "renaissance")
MODES = ("major", "minor")
TEMPOS = ("slow", "moderate", "fast")  # < 80, < 120, >= 120 quarter notes a minute
MAX_BARS = 64
INDEX_SPAN = 1024  # position id = index in the sequence + INDEX_SPAN * (bar slot + bar_slots * voices): BarClock
PHRASE_BARS = 4  # a bar slot says which bar of a group of four the token is in
VOICES = 8  # notes sounding at an onset, as the model is told them: 0 .. VOICES - 1 (more count as the last)
STARTS = ("piece", "mid")
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NAME_TO_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Scale degrees allowed in a key: major; minor = natural + raised 6th and 7th (melodic / harmonic minor).
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 9, 10, 11)}
TICKS_PER_QUARTER = 480

# miditok REMI settings (what the build trains on and the server decodes).
TOKENIZER_CONFIG: dict[str, Any] = {
    "beat_res": {(0, 4): 4, (4, 8): 2},
    "use_velocities": False,
    "use_time_signatures": True,
    "use_tempos": False,
    "use_programs": False,
    "special_tokens": ["PAD", "BOS", "EOS"],
    "time_signature_range": {8: [3, 6, 9, 12], 4: [2, 3, 4, 5, 6], 2: [2, 3, 4]},
}

# Krumhansl-Kessler key profiles (C major / C minor), for estimating a key from notes.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0-11
    mode: str  # "major" | "minor"

    def __str__(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"

    def pitch_classes(self) -> frozenset[int]:
        return frozenset((self.tonic + d) % 12 for d in SCALES[self.mode])


_KEY_RE = re.compile(r"^\s*([A-Ga-g])\s*(#|♯|b|♭|-)?\s*(major|minor|maj|min|m)?\s*$", re.IGNORECASE)


def parse_key(text: str) -> Key:
    """'D minor', 'F# major', 'Bb', 'c# min', 'Am' -> Key; ValueError on anything else."""
    m = _KEY_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a key: write a note name and a mode, e.g. 'D minor' or 'Bb major'")
    letter, accidental, mode = m.group(1).upper(), m.group(2), (m.group(3) or "major").lower()
    pc = _NAME_TO_PC[letter] + (1 if accidental in ("#", "♯") else -1 if accidental in ("b", "♭", "-") else 0)
    return Key(pc % 12, "minor" if mode in ("minor", "min", "m") else "major")


def estimate_key(pitches: Sequence[int], durations: Sequence[float]) -> Key:
    """Krumhansl-Kessler: the key whose profile best correlates with the duration-weighted pitch classes."""
    hist = np.zeros(12)
    np.add.at(hist, np.asarray(pitches, dtype=np.int64) % 12, np.asarray(durations, dtype=np.float64))
    if not hist.any():
        return Key(0, "major")
    best, best_r = Key(0, "major"), -2.0
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(profile, tonic))[0, 1])
            if r > best_r:
                best, best_r = Key(tonic, mode), r
    return best


CANONICAL_TONIC = {"major": 0, "minor": 9}  # C major, A minor


def canonical_key(mode: str) -> Key:
    return Key(CANONICAL_TONIC[mode], mode)


def canonical_shift(key: Key) -> int:
    """Semitones that move music in ``key`` to C major / A minor, in [-6, 5] (the register barely moves);
    minus it moves composed music back to ``key``."""
    s = (CANONICAL_TONIC[key.mode] - key.tonic) % 12
    return s - 12 if s > 5 else s


def tempo_bucket(bpm: float) -> str:
    return "slow" if bpm < 80 else "moderate" if bpm < 120 else "fast"


def make_tokenizer(params_file: str | None = None) -> Any:
    from miditok import REMI, TokenizerConfig

    if params_file:
        return REMI(params=params_file)
    return REMI(TokenizerConfig(**TOKENIZER_CONFIG))


@dataclass(frozen=True)
class Note:
    pitch: int
    start: float  # quarter notes from the start of bar 1
    duration: float  # quarter notes
    bar: int  # 0-based


class Vocabulary:
    """miditok's REMI vocabulary plus the conditioning tokens, with the lookups decoding and the grammar need."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        base: dict[str, int] = dict(tokenizer.vocab)
        self.base_size = len(base)
        names = [None] * self.base_size
        for name, i in base.items():
            names[i] = name
        extra = ([f"Style_{s}" for s in STYLES] + [f"Key_{pc}_{m}" for m in MODES for pc in range(12)]
                 + [f"Tempo_{t}" for t in TEMPOS] + [f"Bars_{n}" for n in range(1, MAX_BARS + 1)]
                 + [f"Start_{s}" for s in STARTS])
        self.names: list[str] = names + extra
        self.ids = {n: i for i, n in enumerate(self.names)}
        self.size = len(self.names)
        self.pad, self.bos, self.eos, self.bar = (self.ids[t] for t in ("PAD_None", "BOS_None", "EOS_None", "Bar_None"))
        self.pitch_of = np.full(self.size, -1, dtype=np.int64)  # token -> MIDI pitch
        self.position_of = np.full(self.size, -1, dtype=np.int64)  # token -> steps after the previous onset
        self.duration_of = np.full(self.size, np.nan)  # token -> beats
        self.time_signatures: dict[tuple[int, int], int] = {}
        for i, n in enumerate(names):
            kind, _, value = n.partition("_")
            if kind == "Pitch":
                self.pitch_of[i] = int(value)
            elif kind == "Position":
                self.position_of[i] = int(value)
            elif kind == "Duration":
                whole, sub, res = (int(x) for x in value.split("."))
                self.duration_of[i] = whole + sub / res
            elif kind == "TimeSig":
                num, den = value.split("/")
                self.time_signatures[(int(num), int(den))] = i
        self._position_token = {int(self.position_of[i]): int(i) for i in np.flatnonzero(self.position_of >= 0)}
        self.pitch_ids = np.flatnonzero(self.pitch_of >= 0)
        self.resolution = max(res for (lo, hi), res in tokenizer.config.beat_res.items())
        # token -> how many onset steps a duration covers (rounded up; 0 for other tokens)
        self.duration_steps = np.ceil(np.nan_to_num(self.duration_of) * self.resolution - 1e-9).astype(np.int64)
        # pitch token id -> token id of the pitch shifted by s (for transposition), built on demand
        self._pitch_token = {int(self.pitch_of[i]): int(i) for i in self.pitch_ids}
        self.pitch_range = (min(self._pitch_token), max(self._pitch_token))
        # bar slots (BarClock): 0 before the first bar; then, for each bar of a group of PHRASE_BARS, each meter's
        # bar line and onsets (a meter of n beats has n * resolution onsets)
        self._meter_slots, first = {}, 1
        for num in sorted({n for n, _ in self.time_signatures}):
            self._meter_slots[num] = first
            first += num * self.resolution + 1
        self._slots_per_bar = first - 1
        self.bar_slots = 1 + PHRASE_BARS * self._slots_per_bar

    # ---- conditioning ----------------------------------------------------------------------------
    def prefix(self, style: str, key: Key, tempo: str, bars: int, start: str = "piece") -> list[int]:
        return [self.bos, self.ids[f"Style_{style}"], self.ids[f"Key_{key.tonic}_{key.mode}"],
                self.ids[f"Tempo_{tempo}"], self.ids[f"Bars_{min(max(bars, 1), MAX_BARS)}"],
                self.ids[f"Start_{start}"]]

    def time_signature_id(self, ts: tuple[int, int]) -> int:
        if ts not in self.time_signatures:
            supported = ", ".join(f"{n}/{d}" for n, d in sorted(self.time_signatures, key=lambda t: (t[1], t[0])))
            raise ValueError(f"time signature {ts[0]}/{ts[1]} is not supported; one of {supported}")
        return self.time_signatures[ts]

    def positions_per_bar(self, ts: tuple[int, int]) -> int:
        return ts[0] * self.resolution

    # ---- notes <-> tokens ------------------------------------------------------------------------
    def encode_notes(self, notes: Iterable[Sequence[float]], ts: tuple[int, int]) -> list[int]:
        """Notes as (onset, duration, pitch) in quarter notes from the start of bar 1 -> REMI token ids."""
        from symusic import Note as SNote, Score, TimeSignature, Track

        score = Score(TICKS_PER_QUARTER)
        score.time_signatures.append(TimeSignature(0, ts[0], ts[1]))
        track = Track(program=0)
        for onset, dur, pitch, *_ in notes:
            track.notes.append(SNote(int(round(onset * TICKS_PER_QUARTER)), max(1, int(round(dur * TICKS_PER_QUARTER))),
                                     int(pitch), 80))
        score.tracks.append(track)
        return self.encode_score(score)

    def encode_score(self, score: Any) -> list[int]:
        """A symusic Score (every non-drum track merged into one voice stream) -> REMI token ids."""
        from symusic import Score, Track

        merged = Score(score.ticks_per_quarter)
        for ts in score.time_signatures:
            merged.time_signatures.append(ts)
        track = Track(program=0)
        for t in score.tracks:
            if not t.is_drum:
                for n in t.notes:
                    track.notes.append(n)
        track.notes.sort(key=lambda n: (n.time, n.pitch))
        merged.tracks.append(track)
        seq = self.tokenizer.encode(merged)
        seq = seq[0] if isinstance(seq, list) else seq
        return self.relative_positions([int(i) for i in seq.ids])

    def relative_positions(self, ids: Sequence[int]) -> list[int]:
        """miditok's absolute ``Position_p`` tokens -> steps after the bar line (first onset) or the onset before."""
        out, last = [], -1
        for i in ids:
            if i == self.bar:
                last = -1
            elif self.position_of[i] >= 0:
                p = int(self.position_of[i])
                i = self._position_token[p if last < 0 else p - last]
                last = p
            out.append(i)
        return out

    def decode(self, ids: Sequence[int], ts: tuple[int, int]) -> list[Note]:
        """REMI token ids (conditioning tokens and anything malformed are skipped) -> notes."""
        reader = NoteReader(self, ts)
        return [n for i in ids for n in reader.feed(int(i))]

    def bars_in(self, ids: Sequence[int]) -> int:
        return int(sum(1 for i in ids if i == self.bar))


class BarClock:
    """Numbers a piece's tokens for the model (see the module doc): called with the next tokens, it returns their
    position ids, ``index + INDEX_SPAN * (slot + bar_slots * voices)``, where the stream stands once each token is
    read. Slot: before the first bar, at a bar line (``Bar``, ``TimeSig``) or at an onset (its ``Position``,
    pitches and durations), in bar ``first_bar`` + bars read, counted in groups of PHRASE_BARS. Voices: the notes
    sounding there, held ones and those struck so far."""

    def __init__(self, vocab: Vocabulary, ts: tuple[int, int], first_bar: int = 0) -> None:
        self.v = vocab
        self.first_slot = vocab._meter_slots[ts[0]]
        self.per_bar = vocab.positions_per_bar(ts)
        self.index, self.bar, self.onset, self.started = 0, first_bar - 1, -1, False
        self.ends: list[int] = []  # when the notes struck so far stop sounding (steps from the first bar line)
        self.striking = 0  # a pitch read whose duration is not yet

    def _now(self) -> int:
        return self.bar * self.per_bar + max(self.onset, 0)

    def __call__(self, ids: Iterable[int]) -> np.ndarray:
        v, out = self.v, []
        for t in ids:
            t = int(t)
            if t == v.bar or v.position_of[t] >= 0:
                if t == v.bar:
                    self.bar, self.onset, self.started = self.bar + 1, -1, True
                else:
                    self.onset = min(max(self.onset, 0) + int(v.position_of[t]), self.per_bar - 1)
                now = self._now()
                self.ends, self.striking = [e for e in self.ends if e > now], 0
            elif v.pitch_of[t] >= 0:
                self.striking = 1
            elif not math.isnan(v.duration_of[t]) and self.striking:
                self.ends.append(self._now() + max(1, int(v.duration_steps[t])))
                self.striking = 0
            if self.started:
                slot = (self.bar % PHRASE_BARS) * v._slots_per_bar + self.first_slot + self.onset + 1
                slot += v.bar_slots * min(len(self.ends) + self.striking, VOICES - 1)
            else:
                slot = 0
            out.append(self.index + INDEX_SPAN * slot)
            self.index += 1
        return np.asarray(out, dtype=np.int64)


class NoteReader:
    """Turns REMI tokens into notes one token at a time (a note is complete at its duration token)."""

    def __init__(self, vocab: Vocabulary, ts: tuple[int, int]) -> None:
        self.v = vocab
        self.beat = 4.0 / ts[1]  # quarter notes per beat
        self.bar_len = ts[0] * self.beat
        self.bar, self.position, self.pitch = -1, -1, -1

    def feed(self, token: int) -> list[Note]:
        v = self.v
        if token == v.bar:
            self.bar, self.position, self.pitch = self.bar + 1, -1, -1
        elif v.position_of[token] >= 0:
            self.position, self.pitch = max(self.position, 0) + int(v.position_of[token]), -1
        elif v.pitch_of[token] >= 0:
            self.pitch = int(v.pitch_of[token])
        elif not math.isnan(v.duration_of[token]) and self.pitch >= 0 and self.bar >= 0:
            start = self.bar * self.bar_len + self.position / v.resolution * self.beat
            note = Note(self.pitch, start, float(v.duration_of[token]) * self.beat, self.bar)
            self.pitch = -1
            return [note]
        return []


class Grammar:
    """The ``LogitsProcessor`` that keeps a generated REMI stream well formed (see the module doc)."""

    def __init__(self, vocab: Vocabulary, ts: tuple[int, int], bars: int, *, key: Key | None,
                 pitch_range: tuple[int, int], bars_done: int = 0, state: str = "start") -> None:
        self.v = vocab
        self.ts_id = vocab.time_signature_id(ts)
        self.per_bar = vocab.positions_per_bar(ts)
        self.bars = bars  # bars to generate in total (counting bars_done)
        self.bars_done = bars_done
        self.state = state  # start | bar | timesig | position | pitch | duration
        self.position = -1
        self.reach = 0  # steps after the bar line that the bar's notes sound until
        self.last_pitch = -1
        self.unison = False  # the onset's last two pitches are one (two voices in unison: at most two)
        lo, hi = pitch_range
        pitches = vocab.pitch_of
        ok = (pitches >= lo) & (pitches <= hi)
        if key is not None:
            ok &= np.isin(pitches % 12, list(key.pitch_classes()))
        self.allowed_pitch = ok
        if not ok.any():
            raise ValueError("no pitch is allowed: widen the range")
        self.allowed_position = vocab.position_of >= 0
        self.allowed_duration = ~np.isnan(vocab.duration_of)

    def _mask(self) -> np.ndarray:
        v, m = self.v, np.zeros(self.v.size, dtype=bool)
        more_bars = self.bars_done < self.bars
        if self.state == "start":
            m[v.bar if more_bars else v.eos] = True
        elif self.state == "bar":
            m[self.ts_id] = True
        elif self.state == "position":
            m |= self.allowed_pitch
        elif self.state == "pitch":
            m |= self.allowed_duration
        else:  # after a time signature or a duration
            if self.position < 0:  # the bar's first onset: 0 .. per_bar - 1 steps after the bar line
                m |= self.allowed_position & (v.position_of < self.per_bar)
            else:  # a later onset: at least one step on, still inside the bar
                m |= self.allowed_position & (v.position_of >= 1) & (v.position_of < self.per_bar - self.position)
            if self.state == "duration":
                m |= self.allowed_pitch & ((v.pitch_of > self.last_pitch)
                                           | ((v.pitch_of == self.last_pitch) & (not self.unison)))
            if self.reach >= self.per_bar:  # a bar ends once its notes sound to its end
                m[v.bar if more_bars else v.eos] = True
        return m

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        mask = self._mask()
        n = min(logits.shape[-1], mask.shape[0])
        out = np.full(logits.shape, -np.inf, dtype=np.float32)
        out[:n][mask[:n]] = logits[:n][mask[:n]]
        v = self.v
        if self.bars_done >= self.bars and mask[v.eos] and max(v.eos, v.bar) < n:
            # In the last bar the model's "next bar" means "this bar is done": the piece ends there, rather than
            # the bar filling up with whatever else is allowed (a pile of notes on its last onset).
            out[v.eos] = np.logaddexp(logits[v.eos], logits[v.bar])
        return out

    def advance(self, token: int) -> None:
        v = self.v
        if token == v.bar:
            self.bars_done += 1
            self.state, self.position, self.last_pitch, self.reach = "bar", -1, -1, 0
        elif token == self.ts_id:
            self.state = "timesig"
        elif v.position_of[token] >= 0:
            self.state, self.last_pitch = "position", -1
            self.position = max(self.position, 0) + int(v.position_of[token])
        elif v.pitch_of[token] >= 0:
            pitch = int(v.pitch_of[token])
            self.state, self.last_pitch, self.unison = "pitch", pitch, pitch == self.last_pitch
        elif not math.isnan(v.duration_of[token]):
            self.state = "duration"
            self.reach = max(self.reach, self.position + int(v.duration_steps[token]))
        elif token == v.eos:
            self.state = "end"

    @classmethod
    def after(cls, vocab: Vocabulary, ids: Sequence[int], ts: tuple[int, int], bars: int, **kw: Any) -> "Grammar":
        """A grammar positioned after an existing body (a primer): it continues where ``ids`` stop."""
        g = cls(vocab, ts, bars, **kw)
        for t in ids:
            if t != vocab.eos:
                g.advance(int(t))
        return g
