"""A running server for the SDK and the CLI: the gateway in front of a stand-in nlp-analysis (fixed answers, errors
on demand) and the Echo test service; the real nlp-analysis behind a gateway for the end-to-end test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from maas_gateway.testing import UpstreamConfig, echo_upstream, gateway, nlp_upstream

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
async def stub_suite() -> AsyncIterator[dict[str, Any]]:
    async with nlp_upstream() as nlp, echo_upstream() as echo:
        upstreams = {"nlp-analysis": UpstreamConfig(target=nlp.address), "echo": UpstreamConfig(target=echo.address)}
        async with gateway(upstreams) as (_, address), gateway(upstreams, api_keys="sdk-key") as (_, keyed):
            yield {"address": address, "keyed": keyed, "nlp": nlp.servicer, "echo": echo.servicer}


@pytest.fixture(scope="session")
async def real_suite() -> AsyncIterator[str]:
    """nlp-analysis with the real models, behind the gateway: the address of the gateway."""
    from nlp_analysis.app import NlpApp
    from nlp_analysis.settings import NlpSettings

    settings = NlpSettings(host="127.0.0.1", port=0, model_repository=ROOT / "models", log_format="text")
    missing = [getattr(settings, f) for f in type(settings).model_fields
               if f.endswith("_model") and not (settings.model_repository / getattr(settings, f)).is_dir()]
    if missing:
        pytest.fail(f"models {missing} are not built: run `make models`")
    app = NlpApp(settings)
    port = await app.start()
    try:
        async with gateway({"nlp-analysis": UpstreamConfig(target=f"127.0.0.1:{port}")}) as (_, address):
            yield address
    finally:
        await app.stop()
