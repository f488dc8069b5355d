"""The real suite beside any running one, for tests: ``config, env = isolated(tmp)``, then
``python -m maas_cluster --config config up`` with ``env``."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Mapping

from .config import REPO_ROOT, load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated(tmp: Path, environ: Mapping[str, str] | None = None) -> tuple[Path, dict[str, str]]:
    """A copy of cluster.toml in ``tmp`` (absolute model repository, run dir ``tmp/run``) and an environment that
    puts every enabled process, the gateway included, on free ports (``<PREFIX>PORT``, ``<PREFIX>METRICS_PORT``);
    addresses between services follow (``{addr:...}`` in cluster.toml, the gateway's upstreams)."""
    text = (REPO_ROOT / "cluster.toml").read_text()
    text = text.replace('model_repository = "models"', f'model_repository = "{REPO_ROOT / "models"}"')
    text = text.replace('run_dir = ".run"', f'run_dir = "{tmp / "run"}"')
    config = tmp / "cluster.toml"
    config.write_text(text)
    env = dict(os.environ if environ is None else environ)
    for spec in load(config).enabled():
        env[spec.var("port")] = str(free_port())
        if spec.metrics_port is not None:
            env[spec.var("metrics_port")] = str(free_port())
    return config, env
