from pathlib import Path

import grpc
import pytest

from music_generator.app import MusicGenApp
from music_generator.settings import MusicGenSettings

REPOSITORY = Path(__file__).resolve().parents[3] / "models"
MODEL = "music-transformer"


def settings(**kw) -> MusicGenSettings:
    if not (REPOSITORY / MODEL).exists():
        pytest.fail(f"model {MODEL} is not built: run `make models`")
    return MusicGenSettings(host="127.0.0.1", port=0, model_repository=REPOSITORY, log_format="text", **kw)


@pytest.fixture(scope="session")
def make_music_settings():
    return settings


@pytest.fixture(scope="session")
async def music_server():
    app = MusicGenApp(settings())
    port = await app.start()
    yield app, f"127.0.0.1:{port}"
    await app.stop()


@pytest.fixture(scope="session")
async def music_channel(music_server):
    async with grpc.aio.insecure_channel(music_server[1]) as ch:
        yield ch
