"""Statistics of a piece, to compare generated music with its training style (the build reports them)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from music_generator.vocab import Key, Note

STATS = ("pitch_class_entropy", "notes_per_bar", "polyphony", "pitch_range")


def piece_stats(notes: Sequence[Note], bars: int) -> dict[str, float]:
    """pitch-class entropy (bits), notes per bar, polyphony (notes sounding at each onset, on average) and
    pitch range (semitones, highest minus lowest)."""
    if not notes:
        return {k: 0.0 for k in STATS}
    pcs = np.bincount([n.pitch % 12 for n in notes], minlength=12).astype(float)
    p = pcs[pcs > 0] / pcs.sum()
    entropy = float(-(p * np.log2(p)).sum())
    starts = np.array([n.start for n in notes])
    ends = starts + np.array([n.duration for n in notes])
    onsets = np.unique(starts)
    sounding = [(np.sum((starts <= t + 1e-9) & (ends > t + 1e-9))) for t in onsets]
    pitches = [n.pitch for n in notes]
    return {"pitch_class_entropy": entropy, "notes_per_bar": len(notes) / max(bars, 1),
            "polyphony": float(np.mean(sounding)), "pitch_range": float(max(pitches) - min(pitches))}


def in_key_share(notes: Sequence[Note], key: Key) -> float:
    """Share of notes whose pitch class belongs to the key (minor: natural, harmonic and melodic minor)."""
    if not notes:
        return math.nan
    allowed = key.pitch_classes()
    return sum(1 for n in notes if n.pitch % 12 in allowed) / len(notes)


def mean_stats(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in STATS} if rows else {}
