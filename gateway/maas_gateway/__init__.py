"""The gateway: one port in front of every service of the suite.

The gateway itself is a Go program (``gateway/cmd/maas-gateway``, built by ``gateway/build.sh`` into
``gateway/build/maas-gateway``); this package runs it (``python -m maas_gateway``, what ``cluster.toml`` starts) and
holds the test support (``maas_gateway.testing``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GATEWAY_DIR = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = GATEWAY_DIR / "build.sh"
BINARY = GATEWAY_DIR / "build" / "maas-gateway"


def binary() -> Path:
    """The gateway's executable: ``MAAS_GATEWAY_BIN`` when set, else ``gateway/build/maas-gateway``, rebuilt first
    when a source is newer (build.sh does nothing when it is up to date)."""
    given = os.environ.get("MAAS_GATEWAY_BIN")
    if given:
        return Path(given)
    if BUILD_SCRIPT.exists():
        done = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout)
            raise RuntimeError(f"building the gateway failed ({BUILD_SCRIPT}); see above")
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} is missing: run `make gateway` (gateway/build.sh)")
    return BINARY
