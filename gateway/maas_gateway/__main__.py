"""``python -m maas_gateway``: runs the gateway's executable in this process (exec: same pid, signals and
output), with settings from GATEWAY_* environment variables (upstreams: GATEWAY_<NAME>_ADDR)."""

from __future__ import annotations

import os

from maas_gateway import binary


def main() -> None:
    path = str(binary())
    os.execv(path, [path])


if __name__ == "__main__":
    main()
