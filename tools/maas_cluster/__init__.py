"""The suite as local processes, without Docker: ``python -m maas_cluster {up,down,status,demo}``.

cluster.toml (repository root, or $MAAS_CLUSTER_CONFIG) lists the services; ``up`` starts the enabled ones
detached (pid in .run/<name>.pid, output in .run/logs/<name>.log) and waits until each reports SERVING on
grpc.health.v1; ``down`` stops them (SIGTERM, then SIGKILL); ``status`` asks each for its health; ``demo``
calls nlp-analysis. Standard library, grpcio and grpcio-health-checking only.
"""

from .config import ClusterConfig, ConfigError, Instance, ServiceSpec, load

__all__ = ["ClusterConfig", "ConfigError", "Instance", "ServiceSpec", "load"]
