"""The symbolic-music corpus: pieces of the music21 corpus (BSD) parsed once into notes, grouped by style.

Parsing with music21 costs 0.05-0.2 s a piece, so this runs once (two processes) and its output is cached
like any model: ``corpus.jsonl.gz``, one JSON object per piece::

    {"id": "bach/bwv269", "style": "chorale", "title": ..., "composer": ..., "source": "bach/bwv269.mxl#0",
     "key": {"tonic": 0, "mode": "major"}, "time_signature": [4, 4], "tempo_bpm": null,
     "pickup": 1.0,              # quarter notes the first bar lacks (an anacrusis), 0 when it is complete
     "notes": [[onset, duration, pitch, part], ...]}   # onsets and durations in quarter notes from bar 1

Styles and their collections (a seeded sample of the larger ones, so the build stays within budget):
    chorale      J.S. Bach, the 371 four-part chorales (Riemenschneider)
    folk         the Essen folk-song collection (German and other European songs, monophonic)
    fiddle       O'Neill's Music of Ireland (1850): reels, jigs, hornpipes (monophonic)
    renaissance  Palestrina masses (four- to six-voice polyphony)
Pieces whose meter changes, or that have no notes, are left out (the tokenisation has one meter per piece).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from maas_modelbuild.core import BuildContext, Recipe

log = logging.getLogger("maas.modelbuild.music_corpus")

CORPUS_FILE = "corpus.jsonl.gz"
PARAMS = {
    "seed": 11,
    # style -> (corpus folder, glob, how many files to sample; 0: all). ABC files hold many tunes each.
    "collections": {
        "chorale": ["bach", "bwv*.mxl", 0],
        "folk": ["essenFolksong", "*.abc", 4],
        "fiddle": ["oneills1850", "*.abc", 14],
        "renaissance": ["palestrina", "*.krn", 260],
    },
    "max_tunes_per_file": 400,
}


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _key_of(score: Any) -> dict[str, Any]:
    from music21 import key as m21key

    keys = list(score.flatten().getElementsByClass(m21key.Key))
    k = keys[0] if keys else score.analyze("key")
    return {"tonic": int(k.tonic.pitchClass), "mode": "minor" if k.mode == "minor" else "major"}


def piece_record(score: Any, style: str, ident: str, source: str) -> dict[str, Any] | None:
    """One parsed score as a corpus record, or None when it does not fit the tokenisation."""
    from music21 import meter, tempo

    score = score.stripTies(inPlace=False)
    flat = score.flatten()
    sigs = {ts.ratioString for ts in flat.getElementsByClass(meter.TimeSignature)}
    if len(sigs) != 1:
        return None
    ts = flat.getElementsByClass(meter.TimeSignature).first()
    first_measure = score.parts[0].getElementsByClass("Measure").first() if score.parts else None
    bar = float(ts.barDuration.quarterLength)
    pickup = 0.0
    if first_measure is not None and 0 < float(first_measure.duration.quarterLength) < bar:
        pickup = bar - float(first_measure.duration.quarterLength)
    notes: list[list[float]] = []
    for part_index, part in enumerate(score.parts or [score]):
        for n in part.flatten().notes:
            dur = float(n.duration.quarterLength)
            if dur <= 0:  # grace notes
                continue
            for p in n.pitches:
                notes.append([round(float(n.offset) + pickup, 4), round(dur, 4), int(p.midi), part_index])
    if len(notes) < 8:
        return None
    notes.sort(key=lambda x: (x[0], x[2]))
    marks = list(flat.getElementsByClass(tempo.MetronomeMark))
    bpm = marks[0].getQuarterBPM() if marks else None
    meta = score.metadata
    return {
        "id": ident, "style": style, "source": source,
        "title": (meta.title if meta and meta.title else None) or ident.split("/")[-1],
        "composer": (meta.composer if meta and meta.composer else None),
        "key": _key_of(score), "time_signature": [int(ts.numerator), int(ts.denominator)],
        "tempo_bpm": round(float(bpm), 1) if bpm else None, "pickup": pickup,
        "parts": len(score.parts) or 1, "notes": notes,
    }


def parse_file(task: tuple[str, str, int]) -> tuple[list[dict[str, Any]], int]:
    """Parse one corpus file (an ABC file may hold hundreds of tunes); returns records and pieces dropped."""
    import music21

    style, rel, limit = task
    path = corpus_root() / rel
    records, dropped = [], 0
    try:
        parsed = music21.converter.parse(str(path))
    except Exception as e:  # a file music21 cannot read is skipped, and counted
        log.warning("cannot parse %s: %s", rel, e)
        return [], 1
    scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
    for i, score in enumerate(scores[:limit]):
        try:
            record = piece_record(score, style, f"{rel.rsplit('.', 1)[0]}#{i}", f"{rel}#{i}")
        except Exception as e:
            log.debug("dropping %s#%d: %s", rel, i, e)
            record = None
        if record is None:
            dropped += 1
        else:
            records.append(record)
    return records, dropped


def tasks(params: dict[str, Any]) -> list[tuple[str, str, int]]:
    root = corpus_root()
    rng = random.Random(params["seed"])
    out = []
    for style, (folder, pattern, sample) in params["collections"].items():
        files = sorted(str(p.relative_to(root)) for p in (root / folder).rglob(pattern))
        if sample and sample < len(files):
            files = sorted(rng.sample(files, sample))
        out += [(style, f, params["max_tunes_per_file"]) for f in files]
    return out


def load(path: Path) -> list[dict[str, Any]]:
    """The records of a built corpus (``models/music-corpus/<v>/corpus.jsonl.gz``)."""
    with gzip.open(path / CORPUS_FILE if path.is_dir() else path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def build(ctx: BuildContext) -> dict[str, Any]:
    todo = tasks(ctx.params)
    workers = max(1, min(os.cpu_count() or 1, 4))
    records: list[dict[str, Any]] = []
    dropped = Counter()
    with ProcessPoolExecutor(workers) as pool:
        for (style, _, _), (recs, lost) in zip(todo, pool.map(parse_file, todo, chunksize=1)):
            records += recs
            dropped[style] += lost
    records.sort(key=lambda r: r["id"])
    with gzip.open(ctx.out_dir / CORPUS_FILE, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    per_style = Counter(r["style"] for r in records)
    notes = Counter()
    for r in records:
        notes[r["style"]] += len(r["notes"])
    log.info("music corpus: %s pieces (%s dropped)", dict(per_style), dict(dropped))
    return {
        "task": "dataset",
        "file": CORPUS_FILE,
        "pieces": dict(per_style),
        "notes": dict(notes),
        "dropped": dict(dropped),
        "license": "BSD-3-Clause (music21 corpus); the works themselves are public domain",
    }


RECIPE = Recipe(
    name="music-corpus",
    version=1,
    build=build,
    description="music21 corpus pieces (chorale, folk, fiddle, renaissance) parsed into notes, for training",
    sources=("music21",),
    params=PARAMS,
    budget_s=240,
)
