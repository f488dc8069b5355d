"""``python -m text_generator`` — settings from TEXTGEN_* environment variables."""

from __future__ import annotations

import asyncio

from maas_runtime import logs
from text_generator.app import TextGenApp
from text_generator.settings import TextGenSettings


async def serve(settings: TextGenSettings) -> None:
    await TextGenApp(settings).run()  # built inside the running loop: grpc.aio binds to it


def main() -> None:
    settings = TextGenSettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
