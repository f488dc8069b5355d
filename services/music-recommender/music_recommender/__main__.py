"""``python -m music_recommender`` — settings from MUSICREC_* environment variables."""

from __future__ import annotations

import asyncio

from maas_runtime import logs
from music_recommender.app import RecommenderApp
from music_recommender.settings import RecommenderSettings


async def serve(settings: RecommenderSettings) -> None:
    await RecommenderApp(settings).run()  # built inside the running loop: grpc.aio binds to it


def main() -> None:
    settings = RecommenderSettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
