"""Renders of a composition: WAV audio through FluidSynth (General MIDI soundfont) and a piano-roll PNG."""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from pathlib import Path
from typing import Sequence

from maas_runtime.errors import DeadlineExceeded, Unavailable
from music_generator.vocab import Note

ROW_PX, BEAT_PX, MARGIN = 4, 24, 8
RELEASE_TAIL_S = 2.0  # FluidSynth renders the last notes' release past the end of the MIDI file


def wav_size(duration_s: float, sample_rate: int) -> int:
    """Bytes of the 16-bit stereo WAV ``render_wav`` makes of a piece this long (header and release tail too)."""
    return 44 + int((duration_s + RELEASE_TAIL_S) * sample_rate) * 4


async def render_wav(midi: bytes, *, fluidsynth: str, soundfont: Path, sample_rate: int, timeout_s: float) -> bytes:
    """The MIDI file played by FluidSynth offline (``-F``): 16-bit stereo WAV."""
    if not soundfont.exists():
        raise Unavailable(f"audio rendering is not installed here: no soundfont at {soundfont} "
                          "(Debian: fluid-soundfont-gm; or set MUSICGEN_SOUNDFONT)")
    with tempfile.TemporaryDirectory(prefix="maas-render-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi)
        try:
            proc = await asyncio.create_subprocess_exec(
                fluidsynth, "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-F", str(wav), "-T", "wav",
                str(soundfont), str(mid), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "HOME": tmp})
        except FileNotFoundError:
            raise Unavailable(f"audio rendering is not installed here: {fluidsynth} not found "
                              "(Debian: fluidsynth; or set MUSICGEN_FLUIDSYNTH)") from None
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise DeadlineExceeded(f"audio rendering took longer than {timeout_s:.0f}s") from None
        finally:
            if proc.returncode is None:  # cancelled: don't leave FluidSynth running
                proc.kill()
        if proc.returncode != 0 or not wav.exists():
            raise Unavailable(f"FluidSynth failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")
        return wav.read_bytes()


def piano_roll_png(notes: Sequence[Note], *, bars: int, bar_beats: float, primer_notes: int = 0) -> bytes:
    """Time left to right (bar lines every bar), pitch bottom to top; primer notes grey, generated ones blue."""
    from PIL import Image, ImageDraw

    lo = min((n.pitch for n in notes), default=60) - 2
    hi = max((n.pitch for n in notes), default=72) + 2
    end = max([bars * bar_beats, *(n.start + n.duration for n in notes)])
    width = int(end * BEAT_PX) + 2 * MARGIN
    height = (hi - lo + 1) * ROW_PX + 2 * MARGIN
    img = Image.new("RGB", (min(width, 16000), height), "white")
    draw = ImageDraw.Draw(img)
    for p in range(lo, hi + 1):  # black-key rows shaded, Cs marked
        y = MARGIN + (hi - p) * ROW_PX
        if p % 12 in (1, 3, 6, 8, 10):
            draw.rectangle([MARGIN, y, width - MARGIN, y + ROW_PX - 1], fill=(244, 244, 248))
        if p % 12 == 0:
            draw.line([MARGIN, y + ROW_PX - 1, width - MARGIN, y + ROW_PX - 1], fill=(215, 215, 225))
    b = 0.0
    while b <= end + 1e-9:
        x = MARGIN + int(b * BEAT_PX)
        draw.line([x, MARGIN, x, height - MARGIN], fill=(170, 170, 180))
        b += bar_beats
    for i, n in enumerate(notes):
        x0 = MARGIN + int(n.start * BEAT_PX)
        x1 = max(x0 + 2, MARGIN + int((n.start + n.duration) * BEAT_PX) - 1)
        y = MARGIN + (hi - n.pitch) * ROW_PX
        colour = (150, 150, 150) if i < primer_notes else (40, 90, 200)
        draw.rectangle([x0, y, x1, y + ROW_PX - 1], fill=colour, outline=(20, 40, 90))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
