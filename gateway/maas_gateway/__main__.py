"""``python -m maas_gateway`` — settings from GATEWAY_* environment variables (upstreams: GATEWAY_<NAME>_ADDR)."""

from __future__ import annotations

import asyncio

from maas_gateway.app import GatewayApp
from maas_gateway.settings import GatewaySettings
from maas_runtime import logs


async def serve(settings: GatewaySettings) -> None:
    await GatewayApp(settings).run()  # built inside the running loop: grpc.aio binds to it


def main() -> None:
    settings = GatewaySettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
