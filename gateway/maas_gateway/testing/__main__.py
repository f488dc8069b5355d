"""``python -m maas_gateway.testing``: the Echo test server as a process (settings from ECHO_* variables)."""

from __future__ import annotations

import asyncio

from maas_gateway.testing import EchoSettings, echo_server
from maas_runtime import logs


async def serve(settings: EchoSettings) -> None:
    server, _ = echo_server(settings)

    async def ready() -> None:
        return None

    await server.run(load=ready)


def main() -> None:
    settings = EchoSettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
