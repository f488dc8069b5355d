"""cluster.toml: which processes make up the suite, and the environment each one is started with.

Environment precedence for a process, lowest first:

1. derived from its table: ``<prefix>HOST`` (``[cluster] host``), ``<prefix>PORT``, ``<prefix>METRICS_PORT``
   (when ``metrics_port`` is set), ``<prefix>LOG_FORMAT`` and ``<prefix>MODEL_REPOSITORY`` (absolute); for the
   gateway also ``<prefix><SERVICE>_ADDR`` (``GATEWAY_NLP_ANALYSIS_ADDR``), the address of each enabled service;
2. the table's ``env`` sub-table, where ``{addr:<service>}`` is the address another service listens on and
   ``{run_dir}`` the run folder (``MUSICREC_NLP_ADDR = "{addr:nlp-analysis}"``);
3. the caller's environment: a variable already set there is never replaced (``NLP_PORT=6052 make up``).

The effective host and ports (what ``up`` checks, starts and health-checks) are read back from the result,
so an override moves the whole process, not just its setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

CONFIG_ENV = "MAAS_CLUSTER_CONFIG"
TIMEOUT_ENV = "MAAS_UP_TIMEOUT"
DEFAULT_STARTUP_TIMEOUT_S = 300.0
DEFAULT_STOP_TIMEOUT_S = 30.0
DEFAULT_HOST = "127.0.0.1"
_ADDR = re.compile(r"\{addr:([A-Za-z0-9_-]+)\}")

# tools/maas_cluster/config.py -> the repository root
REPO_ROOT = Path(__file__).resolve().parents[2]

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]*_$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_CLUSTER_KEYS = {"host", "model_repository", "log_format", "run_dir", "startup_timeout_s", "stop_timeout_s"}
_SERVICE_KEYS = {"module", "env_prefix", "port", "metrics_port", "grpc_services", "enabled", "env", "description"}
_TOP_KEYS = {"cluster", "services", "gateway"}


class ConfigError(ValueError):
    """cluster.toml (or an environment override) is not usable; the message says where."""


@dataclass(frozen=True)
class ServiceSpec:
    """One table of cluster.toml."""

    name: str
    kind: str  # "service" or "gateway"
    module: str
    env_prefix: str
    port: int
    metrics_port: int | None
    grpc_services: tuple[str, ...]
    enabled: bool
    env: Mapping[str, str] = field(default_factory=dict)

    def var(self, field_name: str) -> str:
        return f"{self.env_prefix}{field_name.upper()}"


@dataclass(frozen=True)
class Instance:
    """A service with the environment it runs with and the host/ports that environment gives it."""

    spec: ServiceSpec
    env: dict[str, str]  # the whole child environment
    host: str
    port: int
    metrics_port: int | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def probe_host(self) -> str:
        """Where to connect: a wildcard bind address is reached through loopback."""
        if self.host in ("0.0.0.0", ""):
            return "127.0.0.1"
        if self.host in ("::", "[::]"):
            return "[::1]"
        if ":" in self.host and not self.host.startswith("["):
            return f"[{self.host}]"
        return self.host

    @property
    def address(self) -> str:
        return f"{self.probe_host}:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        if not self.metrics_port:
            return None
        return f"http://{self.probe_host}:{self.metrics_port}/metrics"

    def settings(self) -> dict[str, str]:
        """The variables of this service's prefix in its environment (what its settings will read)."""
        p = self.spec.env_prefix
        return {k: v for k, v in sorted(self.env.items()) if k.startswith(p)}


@dataclass(frozen=True)
class ClusterConfig:
    path: Path
    root: Path
    host: str
    model_repository: Path
    log_format: str
    run_dir: Path
    startup_timeout_s: float
    stop_timeout_s: float
    services: tuple[ServiceSpec, ...]  # start order: [services.*] in file order, then [gateway]

    def get(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.services) or "none"
        raise ConfigError(f"{self.path}: no service named {name!r} (known: {known})")

    def enabled(self) -> list[ServiceSpec]:
        return [s for s in self.services if s.enabled]

    def select(self, names: list[str] | None, *, enabled_only: bool) -> list[ServiceSpec]:
        """``names`` in start order (all of them, or the enabled ones, when none are given)."""
        if not names:
            return self.enabled() if enabled_only else list(self.services)
        wanted = {self.get(n).name for n in names}
        return [s for s in self.services if s.name in wanted]

    def service_env(self, spec: ServiceSpec, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables cluster.toml gives ``spec``, after the caller's overrides (see the module doc)."""
        environ = os.environ if environ is None else environ
        own: dict[str, str] = {
            spec.var("host"): self.host,
            spec.var("port"): str(spec.port),
            spec.var("log_format"): self.log_format,
            spec.var("model_repository"): str(self.model_repository),
        }
        if spec.metrics_port is not None:
            own[spec.var("metrics_port")] = str(spec.metrics_port)
        if spec.kind == "gateway":
            # the gateway's upstreams: where each enabled service really listens (after the caller's overrides)
            for other in self.enabled():
                if other.kind != "gateway":
                    own[spec.var(f"{other.name.replace('-', '_')}_addr")] = self.instance(other, environ).address
        own.update({k: self._expand(v, spec, environ) for k, v in spec.env.items()})
        for key in own:
            if key in environ:
                own[key] = environ[key]
        repo_var = spec.var("model_repository")
        if repo_var in environ and environ[repo_var]:
            # a relative override means relative to where the caller stands, not to the child's cwd
            own[repo_var] = str(Path(environ[repo_var]).expanduser().resolve())
        return own

    def _expand(self, value: str, spec: ServiceSpec, environ: Mapping[str, str]) -> str:
        """``{addr:<service>}``: where that service really listens (after the caller's overrides);
        ``{run_dir}``: the cluster's run folder (absolute)."""
        def address(m: re.Match[str]) -> str:
            other = self.get(m.group(1))
            if other.name == spec.name:
                raise ConfigError(f"{self.path}: [services.{spec.name}] env names its own address")
            return self.instance(other, environ).address

        return _ADDR.sub(address, value).replace("{run_dir}", str(self.run_dir))

    def instance(self, spec: ServiceSpec, environ: Mapping[str, str] | None = None) -> Instance:
        environ = os.environ if environ is None else environ
        own = self.service_env(spec, environ)
        env = {**environ, **own}
        env.setdefault("PYTHONUNBUFFERED", "1")
        host = env[spec.var("host")]
        port = _env_port(env, spec.var("port"), allow_none=False)
        metrics = _env_port(env, spec.var("metrics_port"), allow_none=True)
        return Instance(spec=spec, env=env, host=host, port=port, metrics_port=metrics)


def _env_port(env: Mapping[str, str], var: str, *, allow_none: bool) -> int | None:
    raw = env.get(var)
    if raw is None or (allow_none and raw.strip().lower() in ("", "none", "null")):
        if allow_none:
            return None
        raise ConfigError(f"{var} is not set")
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{var}={port}: a cluster process needs a fixed port in 1..65535")
    return port


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return REPO_ROOT / "cluster.toml"


def load(path: str | os.PathLike[str] | None = None) -> ClusterConfig:
    """Read and check cluster.toml (default: $MAAS_CLUSTER_CONFIG, else <repo>/cluster.toml)."""
    p = Path(path) if path is not None else default_config_path()
    p = p.expanduser().resolve()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return parse(data, p)


def parse(data: Mapping[str, Any], path: Path) -> ClusterConfig:
    where = str(path)
    _no_unknown(data, _TOP_KEYS, where)
    root = path.parent
    cluster = _table(data.get("cluster", {}), f"{where} [cluster]")
    _no_unknown(cluster, _CLUSTER_KEYS, f"{where} [cluster]")

    host = _str(cluster.get("host", DEFAULT_HOST), f"{where} [cluster] host")
    log_format = _str(cluster.get("log_format", "text"), f"{where} [cluster] log_format")
    if log_format not in ("text", "json"):
        raise ConfigError(f"{where} [cluster] log_format: 'text' or 'json', not {log_format!r}")
    repo = root / _str(cluster.get("model_repository", "models"), f"{where} [cluster] model_repository")
    run_dir = root / _str(cluster.get("run_dir", ".run"), f"{where} [cluster] run_dir")
    startup = _positive(cluster.get("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S),
                        f"{where} [cluster] startup_timeout_s")
    stop = _positive(cluster.get("stop_timeout_s", DEFAULT_STOP_TIMEOUT_S), f"{where} [cluster] stop_timeout_s")

    specs: list[ServiceSpec] = []
    services = _table(data.get("services", {}), f"{where} [services]")
    for name, table in services.items():
        specs.append(_spec(name, "service", table, f"{where} [services.{name}]"))
    if "gateway" in data:
        specs.append(_spec("gateway", "gateway", data["gateway"], f"{where} [gateway]"))

    _unique(specs, where)
    return ClusterConfig(path=path, root=root, host=host, model_repository=repo.resolve(),
                         log_format=log_format, run_dir=run_dir.resolve(), startup_timeout_s=startup,
                         stop_timeout_s=stop, services=tuple(specs))


def _spec(name: str, kind: str, raw: Any, where: str) -> ServiceSpec:
    table = _table(raw, where)
    if not _NAME.match(name):
        raise ConfigError(f"{where}: service names are lower-case words joined by '-', not {name!r}")
    _no_unknown(table, _SERVICE_KEYS, where)
    for key in ("module", "env_prefix", "port"):
        if key not in table:
            raise ConfigError(f"{where}: missing {key!r}")
    module = _str(table["module"], f"{where} module")
    if not _MODULE.match(module):
        raise ConfigError(f"{where} module: not a Python module name: {module!r}")
    prefix = _str(table["env_prefix"], f"{where} env_prefix")
    if not _PREFIX.match(prefix):
        raise ConfigError(f"{where} env_prefix: upper case, ending in '_' (like 'NLP_'), not {prefix!r}")
    port = _port(table["port"], f"{where} port")
    metrics = _port(table["metrics_port"], f"{where} metrics_port") if "metrics_port" in table else None
    grpc_services = table.get("grpc_services", [])
    if not isinstance(grpc_services, list) or not all(isinstance(s, str) and s for s in grpc_services):
        raise ConfigError(f"{where} grpc_services: a list of fully qualified service names")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where} enabled: true or false, not {enabled!r}")
    env: dict[str, str] = {}
    for key, value in _table(table.get("env", {}), f"{where} env").items():
        if not _ENV_NAME.match(key):
            raise ConfigError(f"{where} env: not an environment variable name: {key!r}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{where} env.{key}: a string or number, not {type(value).__name__}")
        env[key] = value
    return ServiceSpec(name=name, kind=kind, module=module, env_prefix=prefix, port=port, metrics_port=metrics,
                       grpc_services=tuple(grpc_services), enabled=enabled, env=env)


def _unique(specs: list[ServiceSpec], where: str) -> None:
    ports: dict[int, str] = {}
    prefixes: dict[str, str] = {}
    for s in specs:
        for label, port in (("port", s.port), ("metrics_port", s.metrics_port)):
            if port is None:
                continue
            if port in ports:
                raise ConfigError(f"{where}: {s.name} {label} {port} is already used by {ports[port]}")
            ports[port] = f"{s.name} {label}"
        if s.env_prefix in prefixes:
            raise ConfigError(f"{where}: {s.name} env_prefix {s.env_prefix!r} is already used by "
                              f"{prefixes[s.env_prefix]}")
        prefixes[s.env_prefix] = s.name


def _no_unknown(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, not {value!r}")
    return value


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{where}: expected a port number 1..65535, not {value!r}")
    return value


def _positive(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}: expected a positive number of seconds, not {value!r}")
    return float(value)
