"""``python -m music_generator`` — settings from MUSICGEN_* environment variables."""

from __future__ import annotations

import asyncio

from maas_runtime import logs
from music_generator.app import MusicGenApp
from music_generator.settings import MusicGenSettings


async def serve(settings: MusicGenSettings) -> None:
    await MusicGenApp(settings).run()  # built inside the running loop: grpc.aio binds to it


def main() -> None:
    settings = MusicGenSettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
