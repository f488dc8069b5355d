"""``python -m nlp_analysis`` — settings from NLP_* environment variables."""

from __future__ import annotations

import asyncio

from maas_runtime import logs
from nlp_analysis.app import NlpApp
from nlp_analysis.settings import NlpSettings


async def serve(settings: NlpSettings) -> None:
    await NlpApp(settings).run()  # built inside the running loop: grpc.aio binds to it


def main() -> None:
    settings = NlpSettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
