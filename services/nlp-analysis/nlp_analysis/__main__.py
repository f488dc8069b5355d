"""``python -m nlp_analysis`` — settings from NLP_* environment variables."""

from __future__ import annotations

import asyncio

from maas_runtime import logs
from nlp_analysis.app import NlpApp
from nlp_analysis.settings import NlpSettings


def main() -> None:
    settings = NlpSettings()
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(NlpApp(settings).run())


if __name__ == "__main__":
    main()
