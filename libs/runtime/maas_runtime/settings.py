"""Settings objects read from environment variables with a per-service prefix (pydantic-settings).

Nothing reads the environment at import time: a service builds its settings in ``__main__`` and tests
build them directly, e.g. ``NlpSettings(port=0, model_repository=tmp)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """What every gRPC server of the suite has. Subclasses set ``model_config`` with their env prefix."""

    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus /metrics; None: off")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    grace_seconds: float = Field(10.0, ge=0, description="in-flight RPCs get this long on SIGTERM")
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_concurrent_rpcs: int | None = Field(None, ge=1)
    # TLS on the listening port (PEM files). cert + key: TLS; client CA as well: mutual TLS (clients must present
    # a certificate signed by it). Unset: plaintext, for loopback and for a mesh that encrypts for us.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # Close each client connection after this long (with a grace for in-flight calls), so a client balancing
    # over DNS (the gateway, over a Kubernetes headless Service) re-resolves and finds new replicas. None: never.
    max_connection_age_s: float | None = Field(None, gt=0)
    # what the calls in flight on an aged connection get to finish (a generation stream can run for a while)
    max_connection_age_grace_s: float = Field(300.0, gt=0)
    # A shared secret between the suite's hops (off by default, for a laptop): when set, every call but health
    # checks must carry it as x-maas-internal-token metadata, which the gateway (GATEWAY_UPSTREAM_TOKEN) and
    # the suite's own clients (the recommender's channel to nlp-analysis) add.
    internal_token: SecretStr | None = None
    # gRPC keepalive: a connection idle this long is pinged, and closed when the ping is not answered within
    # keepalive_timeout_s (a client gone without closing frees what it held, a generation slot included).
    keepalive_time_s: float = Field(30.0, gt=0)
    keepalive_timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _tls_pair(self) -> "ServerSettings":
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class ModelSettings(BaseSettings):
    """ONNX Runtime and batching settings for servers that serve models."""

    model_config = SettingsConfigDict(env_prefix="MAAS_", extra="ignore")

    model_repository: Path = Path("models")
    # "auto": CUDA when this ONNX Runtime build offers it, else CPU. Or an explicit list: "cuda,cpu" / "cpu".
    providers: str = "auto"
    # Refuse to start when the CUDA provider was asked for but is not the one running (ORT falls back silently).
    require_gpu: bool = False
    executor_workers: int = Field(2, ge=1, description="threads that call session.run")
    intra_op_threads: int = Field(0, ge=0, description="ORT threads per session.run; 0: cores / workers")
    # Rows a model runs at once (micro-batcher or generation engine). None: the default for the provider the
    # model runs on (``batch_defaults``): batching pays far more on a GPU than on a few CPU cores.
    max_batch_size: int | None = Field(None, ge=1)
    max_batch_delay_ms: float = Field(5.0, ge=0)
    max_queue_size: int = Field(1024, ge=1, description="queued items per model beyond which RESOURCE_EXHAUSTED")
    # Admission by expected wait: a request that would wait longer than this to start (the batcher's batches ahead
    # of it, the engine's queue over its recent drain rate) is refused at once, RESOURCE_EXHAUSTED with a retry
    # hint, however short the queue. 0: by queue length only.
    max_queue_wait_s: float = Field(1.0, ge=0)
    # Decoders: keep the KV cache on the session's device between steps with ONNX Runtime's IO binding
    # (maas_runtime.generation.device). auto: on under CUDA (the cache never crosses the bus); off on the CPU,
    # where numpy buffers written in place are faster (`make bench`: "IO binding on the CPU").
    io_binding: Literal["auto", "on", "off"] = "auto"

    batch_defaults: ClassVar[dict[str, int]] = {"CPUExecutionProvider": 32, "CUDAExecutionProvider": 128}

    def ort_threads(self) -> int:
        if self.intra_op_threads:
            return self.intra_op_threads
        return max(1, (os.cpu_count() or 1) // self.executor_workers)

    def batch_size(self, provider: str) -> int:
        """``max_batch_size`` when set, else this service's default for ``provider`` (the CPU's for others)."""
        if self.max_batch_size is not None:
            return self.max_batch_size
        return self.batch_defaults.get(provider, self.batch_defaults["CPUExecutionProvider"])

    def binds(self, provider: str) -> bool:
        """Whether a decoder on ``provider`` keeps its cache on the device (IO binding)."""
        if self.io_binding == "auto":
            return provider == "CUDAExecutionProvider"
        return self.io_binding == "on"
