from pathlib import Path

import grpc
import pytest

from text_generator.app import TextGenApp
from text_generator.settings import TextGenSettings

REPOSITORY = Path(__file__).resolve().parents[3] / "models"
MODEL = "smollm2-135m-instruct"


def settings(**kw) -> TextGenSettings:
    quantization = kw.get("quantization", "fp32")
    name = MODEL if quantization == "fp32" else f"{MODEL}-{quantization}"
    if not (REPOSITORY / name).exists():
        pytest.fail(f"model {name} is not built: run `make models`")
    return TextGenSettings(host="127.0.0.1", port=0, model_repository=REPOSITORY, log_format="text", **kw)


@pytest.fixture(scope="session")
def make_settings():
    return settings


@pytest.fixture(scope="session")
async def textgen_server():
    """The default service: the float32 model."""
    app = TextGenApp(settings())
    port = await app.start()
    yield app, f"127.0.0.1:{port}"
    await app.stop()


@pytest.fixture(scope="session")
async def channel(textgen_server):
    async with grpc.aio.insecure_channel(textgen_server[1]) as ch:
        yield ch
