import os
from pathlib import Path

import grpc
import pytest

from nlp_analysis.app import NlpApp
from nlp_analysis.settings import NlpSettings

REPOSITORY = Path(os.environ.get("MAAS_TEST_MODELS") or Path(__file__).resolve().parents[3] / "models")
MODELS = ("text-encoder", "sentiment", "creative-labels", "ner")


def settings(**kw) -> NlpSettings:
    missing = [m for m in MODELS if not (REPOSITORY / m).exists()]
    if missing:
        pytest.fail(f"models {missing} are not built: run `make models`")
    return NlpSettings(host="127.0.0.1", port=0, model_repository=REPOSITORY, log_format="text", **kw)


@pytest.fixture(scope="session")
def make_settings():
    """NlpSettings for a test server on a free port over the built model repository."""
    return settings


@pytest.fixture(scope="session")
def repository() -> Path:
    settings()  # fails with the fix when models are missing
    return REPOSITORY


@pytest.fixture(scope="session")
async def nlp_server():
    app = NlpApp(settings())
    port = await app.start()
    yield app, f"127.0.0.1:{port}"
    await app.stop()


@pytest.fixture(scope="session")
async def channel(nlp_server):
    async with grpc.aio.insecure_channel(nlp_server[1]) as ch:
        yield ch
