"""nlp-analysis settings: env vars prefixed ``NLP_`` (e.g. NLP_PORT=50052, NLP_MAX_BATCH_SIZE=64)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maas_runtime.settings import ModelSettings, ServerSettings


class NlpSettings(ServerSettings, ModelSettings):
    model_config = SettingsConfigDict(env_prefix="NLP_", extra="ignore")

    port: int = Field(50052, ge=0, le=65535)
    # Request limits (documented in the README): beyond them, INVALID_ARGUMENT naming the field.
    max_texts: int = Field(64, ge=1, description="texts per request")
    max_text_chars: int = Field(10_000, ge=1, description="characters per text")
    max_labels: int = Field(64, ge=1, description="candidate labels per request")
    max_label_chars: int = Field(200, ge=1)
    label_cache_size: int = Field(4096, ge=0, description="caller-label embeddings kept in memory")
    # ExtractEntities reads whole documents (in overlapping windows), so it has its own, larger text limits.
    ner_max_text_chars: int = Field(100_000, ge=1, description="characters per text for ExtractEntities")
    ner_max_request_chars: int = Field(200_000, ge=1, description="characters per ExtractEntities request")
    encoder_model: str = "text-encoder"
    sentiment_model: str = "sentiment"
    labels_model: str = "creative-labels"
    ner_model: str = "ner"
