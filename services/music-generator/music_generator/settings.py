"""music-generator settings: env vars prefixed ``MUSICGEN_`` (e.g. MUSICGEN_PORT=50054)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maas_runtime.onnx_model import variant
from maas_runtime.settings import ModelSettings, ServerSettings


class MusicGenSettings(ServerSettings, ModelSettings):
    model_config = SettingsConfigDict(env_prefix="MUSICGEN_", extra="ignore")

    port: int = Field(50054, ge=0, le=65535)
    model: str = "music-transformer"
    # <model> (float32) or <model>-fp16 (half precision, for CUDA); auto: fp16 under CUDA when built, else fp32.
    quantization: Literal["auto", "fp32", "fp16"] = "auto"
    # One thread runs the model (every request shares each decoding step), with all cores for ONNX Runtime.
    executor_workers: int = Field(1, ge=1)
    # (max_batch_size: 16 rows on the CPU, 64 under CUDA)
    batch_defaults: ClassVar[dict[str, int]] = {"CPUExecutionProvider": 16, "CUDAExecutionProvider": 64}
    max_queue_size: int = Field(64, ge=1)
    # Request limits (beyond them: INVALID_ARGUMENT naming the field).
    max_bars: int = Field(32, ge=1)
    min_tempo_bpm: float = Field(20.0, gt=0)
    max_tempo_bpm: float = Field(300.0, gt=0)
    max_primer_bytes: int = Field(256 * 1024, ge=64)
    max_primer_notes: int = Field(2000, ge=1)
    max_primer_quarters: float = Field(1024.0, gt=0, description="the last note event of a primer, in quarters")
    default_bars: int = Field(8, ge=1)
    default_temperature: float = Field(1.0, gt=0)
    default_top_p: float = Field(0.95, gt=0, le=1)
    # Renders: FluidSynth (a Debian package) with a General MIDI soundfont.
    fluidsynth: str = "fluidsynth"
    soundfont: Path = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    render_timeout_s: float = Field(60.0, gt=0)
    # renders (FluidSynth processes, piano rolls) at once; as many again may wait, more is RESOURCE_EXHAUSTED
    max_concurrent_renders: int = Field(2, ge=1)
    max_render_seconds: float = Field(600.0, gt=0, description="longest piece (in seconds) rendered to audio")

    def served_model(self) -> str:
        """The model folder to load: <model> or <model>-<quantization> (auto: see ``quantization``)."""
        return variant(self.model, self.quantization, self.model_repository, self.providers)
