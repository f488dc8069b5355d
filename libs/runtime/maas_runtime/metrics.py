"""Prometheus metrics shared by every server: per method and per model."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

RPC_LATENCY = Histogram("maas_rpc_latency_seconds", "RPC latency", ["method", "code"], buckets=_LATENCY_BUCKETS)
RPC_IN_FLIGHT = Gauge("maas_rpc_in_flight", "RPCs being served", ["method"])
MODEL_LATENCY = Histogram("maas_model_latency_seconds", "session.run latency", ["model"], buckets=_LATENCY_BUCKETS)
MODEL_BATCH_SIZE = Histogram("maas_model_batch_size", "rows per session.run", ["model"], buckets=_BATCH_BUCKETS)
QUEUE_DEPTH = Gauge("maas_model_queue_depth", "items waiting in the model's micro-batcher", ["model"])
QUEUE_REJECTED = Counter("maas_model_queue_rejected_total", "items refused with RESOURCE_EXHAUSTED", ["model"])
MODEL_PROVIDER = Gauge("maas_model_provider", "execution provider in use (1)", ["model", "version", "provider"])


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics over HTTP on its own port (a daemon thread)."""
    start_http_server(port, addr=host)
