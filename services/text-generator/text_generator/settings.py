"""text-generator settings: env vars prefixed ``TEXTGEN_`` (e.g. TEXTGEN_PORT=50053, TEXTGEN_QUANTIZATION=fp32)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maas_runtime.onnx_model import variant
from maas_runtime.settings import ModelSettings, ServerSettings


class TextGenSettings(ServerSettings, ModelSettings):
    model_config = SettingsConfigDict(env_prefix="TEXTGEN_", extra="ignore")

    port: int = Field(50053, ge=0, le=65535)
    # The served model is <model> (float32 weights), <model>-fp16 (half precision: for CUDA) or <model>-int8
    # (8-bit weights: ~2x faster single-stream decoding on the CPU, held-out perplexity within 1%; but its int8
    # activation rounding makes a request's tokens depend slightly on which other requests share its batch).
    # auto: fp16 under CUDA (when built), else fp32: exact same-seed-same-text on the CPU.
    model: str = "smollm2-135m-instruct"
    quantization: Literal["auto", "fp32", "fp16", "int8"] = "auto"
    # One thread runs the model at a time (the scheduler batches every request into each run), with all the
    # cores for ONNX Runtime's intra-op threads.
    executor_workers: int = Field(1, ge=1)
    # Continuous batching: sequences decoded together, requests queued for prefill beyond them (then
    # RESOURCE_EXHAUSTED), prompt tokens per prefill run, and cache tokens (rows x longest row) in the batch.
    # (max_batch_size: 16 rows on the CPU, where 8 rows already keep both cores busy; 64 under CUDA)
    batch_defaults: ClassVar[dict[str, int]] = {"CPUExecutionProvider": 16, "CUDAExecutionProvider": 64}
    max_queue_size: int = Field(64, ge=1)
    prefill_chunk_tokens: int = Field(512, ge=16)
    max_batch_tokens: int = Field(65536, ge=256)
    # Caches of chat templates' system turns kept for the next conversation that starts with one (0: off).
    prefix_cache_mb: int = Field(256, ge=0)
    # Prompt + generated tokens; 0: the model's own context (8192 for SmolLM2).
    max_context_tokens: int = Field(4096, ge=0)
    # Request limits (beyond them: INVALID_ARGUMENT naming the field) and defaults for unset fields.
    max_new_tokens_limit: int = Field(1024, ge=1)
    default_max_new_tokens: int = Field(128, ge=1)
    default_temperature: float = Field(0.7, ge=0)
    default_top_p: float = Field(0.9, gt=0, le=1)
    max_prompt_chars: int = Field(32_000, ge=1)
    max_messages: int = Field(64, ge=1)
    max_stop_sequences: int = Field(8, ge=0)
    max_stop_chars: int = Field(64, ge=1)

    def served_model(self) -> str:
        """The model folder to load: <model> or <model>-<quantization> (auto: see ``quantization``)."""
        return variant(self.model, self.quantization, self.model_repository, self.providers)
