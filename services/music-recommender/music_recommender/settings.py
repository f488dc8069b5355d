"""music-recommender settings: env vars prefixed ``MUSICREC_`` (e.g. MUSICREC_PORT=50055,
MUSICREC_STORE_URL=postgresql://recommender@db:5432/music)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maas_runtime.settings import ModelSettings, ServerSettings


class RecommenderSettings(ServerSettings, ModelSettings):
    model_config = SettingsConfigDict(env_prefix="MUSICREC_", extra="ignore")

    port: int = Field(50055, ge=0, le=65535)
    model_name: str = "music-recommender"
    # sqlite:///<path> (embedded, the default; a relative path is relative to the working directory) or
    # postgresql://user:password@host:port/database for deployments with several replicas.
    store_url: str = "sqlite:///.run/music-recommender/store.sqlite3"
    # nlp-analysis, whose EmbedText turns query_text and new tracks' descriptions into content vectors.
    nlp_addr: str = "127.0.0.1:50052"
    nlp_timeout_s: float = Field(10.0, gt=0)
    # Request limits (documented in the README): beyond them, INVALID_ARGUMENT naming the field.
    max_k: int = Field(100, ge=1)
    max_query_chars: int = Field(1000, ge=1)
    max_seed_tracks: int = Field(50, ge=1)
    max_events: int = Field(1000, ge=1, description="events per RecordInteractions")
    max_upsert_tracks: int = Field(256, ge=1, description="tracks per UpsertTracks")
    max_id_chars: int = Field(200, ge=1)
    max_filter_values: int = Field(100, ge=1, description="values of each list in a filter")
    max_tags: int = Field(32, ge=1, description="tags of an upserted track")
    max_text_chars: int = Field(4000, ge=1, description="characters of a track's text fields")
    history_limit: int = Field(500, ge=1, description="latest events of a user read per request")
    query_cache_size: int = Field(4096, ge=0, description="query_text embeddings kept (LRU); 0: off")
    # Retraining from the store: on demand (RetrainModel) and every retrain_interval_s when new events arrived.
    retrain_interval_s: float = Field(3600.0, ge=0, description="0: no scheduled retraining")
    # Catalogs of at least this many tracks get an ANN index (faiss IVF) for candidate generation.
    ann_min_items: int = Field(50_000, ge=1)
    ann_candidates: int = Field(400, ge=10)
    ann_nprobe: int = Field(24, ge=1)
    # Load tests only: serve a synthetic catalog of this many items instead of the store's (0: off).
    synthetic_items: int = Field(0, ge=0)
