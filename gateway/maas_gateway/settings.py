"""Gateway settings: env vars prefixed ``GATEWAY_``; the upstreams are ``GATEWAY_<NAME>_ADDR`` variables.

One variable per upstream, so a new service is routed by adding one line of configuration (cluster.toml does
it for the local cluster, docker-compose.yml and the Kubernetes manifests list them)::

    GATEWAY_NLP_ANALYSIS_ADDR=127.0.0.1:50052                  # one address (DNS name or IP) and port
    GATEWAY_NLP_ANALYSIS_ADDR=dns:///nlp-analysis:50052        # every address DNS returns, round robin
    GATEWAY_NLP_ANALYSIS_ADDR=10.0.0.5:50052,10.0.0.6:50052    # a fixed list of IP addresses, round robin
    GATEWAY_NLP_ANALYSIS_SERVICES=maas.nlp.v1.NlpAnalysis      # optional: skip discovery (see below)

The upstream's name is the middle part, lower case with dashes (``nlp-analysis``); it names the upstream in
logs, metrics and error messages. Which gRPC services an upstream serves, and the shape of each method, are
discovered from the upstream's server reflection; ``_SERVICES`` lists them instead for a server without
reflection (its methods are then forwarded as bidirectional streams, which carries every shape).

Everything else has one variable each (``GATEWAY_API_KEYS``, ``GATEWAY_UPSTREAM_TLS``, ...); see the fields.
Tests build the object directly: ``GatewaySettings(port=0, upstreams={"echo": UpstreamConfig(target=...)})``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from maas_runtime.settings import ServerSettings

_SERVICE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_UPSTREAM_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# grpc target schemes passed through as they are (dns:///name:port resolves to every replica)
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:", "xds:")


class UpstreamConfig(BaseModel):
    """One upstream: a gRPC target (one or many replicas) and, optionally, the services it serves."""

    target: str
    services: tuple[str, ...] = ()  # empty: discovered through the upstream's server reflection

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        return channel_target(value)

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        for name in value:
            if not _SERVICE_NAME.match(name):
                raise ValueError(f"not a fully qualified gRPC service name: {name!r}")
        return value


def channel_target(value: str) -> str:
    """A grpc channel target from an address, a grpc target URI, or a comma-separated list of IP:port."""
    value = value.strip()
    if not value:
        raise ValueError("an upstream address is empty")
    if value.startswith(_SCHEMES) or "://" in value:
        return value
    if "," not in value:
        _split_host_port(value)
        return value
    hosts = [_split_host_port(item.strip()) for item in value.split(",") if item.strip()]
    family = set()
    for host, _ in hosts:
        if host == "localhost":
            family.add(4)
            continue
        try:
            family.add(ipaddress.ip_address(host.strip("[]")).version)
        except ValueError:
            raise ValueError(f"{value!r}: a list of addresses takes IP addresses only ({host!r} is a name); "
                             f"for a name with several addresses use dns:///{host}:<port>") from None
    if len(family) != 1:
        raise ValueError(f"{value!r}: mixes IPv4 and IPv6 addresses")
    items = [f"{'127.0.0.1' if h == 'localhost' else h}:{p}" for h, p in hosts]
    return f"ipv{family.pop()}:{','.join(items)}"


def _split_host_port(item: str) -> tuple[str, int]:
    host, sep, port = item.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{item!r}: expected host:port")
    return host, int(port)


class _UpstreamVariables(PydanticBaseSettingsSource):
    """``<prefix><NAME>_ADDR`` and ``<prefix><NAME>_SERVICES`` variables -> ``upstreams``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix") or "").upper()
        pattern = re.compile(rf"^{re.escape(prefix)}(?P<name>[A-Z][A-Z0-9_]*?)_(?P<kind>ADDR|SERVICES)$")
        found: dict[str, dict[str, str]] = {}
        for key, value in os.environ.items():
            m = pattern.match(key.upper())
            if m:
                name = m.group("name").lower().replace("_", "-")
                found.setdefault(name, {})["target" if m.group("kind") == "ADDR" else "services"] = value
        return {"upstreams": found} if found else {}


class GatewaySettings(ServerSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = Field(50051, ge=0, le=65535)
    upstreams: dict[str, UpstreamConfig] = Field(default_factory=dict)

    # Optional API keys (off when empty): clients send `authorization: Bearer <key>` or `x-api-key: <key>`.
    # Comma-separated in the environment. Health checks never need a key.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Per-key token bucket: this many calls a second on average, bursts of `rate_limit_burst` (default: one
    # second's worth). None: no limit. Beyond it: RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail.
    rate_limit_per_s: float | None = Field(None, gt=0)
    rate_limit_burst: int | None = Field(None, ge=1)

    # Upstream channels: TLS (with a client certificate for mutual TLS) and reconnection.
    upstream_tls: bool = False
    upstream_ca_file: Path | None = None  # None with TLS on: the system's roots
    upstream_cert_file: Path | None = None  # client certificate + key: mutual TLS
    upstream_key_file: Path | None = None
    upstream_server_name: str | None = None  # expected name in the upstreams' certificates (SNI / check)
    upstream_health_check: bool = True  # skip replicas whose grpc.health.v1 says NOT_SERVING (client-side)
    reconnect_backoff_max_s: float = Field(2.0, gt=0, description="an upstream back up is used again within this")

    # Upstream health (one entry per routed service in the gateway's own health) and discovery.
    health_interval_s: float = Field(1.0, gt=0)
    discovery_timeout_s: float = Field(10.0, gt=0, description="startup waits this long for the upstreams")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("upstreams")
    @classmethod
    def _names(cls, value: dict[str, UpstreamConfig]) -> dict[str, UpstreamConfig]:
        for name in value:
            if not _UPSTREAM_NAME.match(name):
                raise ValueError(f"upstream names are lower-case words joined by '-', not {name!r}")
        return value

    @model_validator(mode="after")
    def _upstream_tls(self) -> "GatewaySettings":
        if (self.upstream_cert_file is None) != (self.upstream_key_file is None):
            raise ValueError("upstream_cert_file and upstream_key_file go together: set both or neither")
        if not self.upstream_tls and (self.upstream_ca_file or self.upstream_cert_file):
            raise ValueError("upstream_ca_file / upstream_cert_file need upstream_tls=true")
        return self

    @property
    def burst(self) -> int:
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit_per_s or 1))

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Upstreams given to the constructor replace those of the environment rather than merging with them.
        given = "upstreams" in getattr(init_settings, "init_kwargs", {})
        variables = () if given else (_UpstreamVariables(settings_cls),)
        return init_settings, *variables, env_settings, dotenv_settings, file_secret_settings
