import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import grpc
import pytest

from maas.music.v1 import recommender_pb2_grpc
from music_recommender.app import RecommenderApp
from music_recommender.settings import RecommenderSettings
from nlp_analysis.app import NlpApp
from nlp_analysis.settings import NlpSettings

REPOSITORY = Path(os.environ.get("MAAS_TEST_MODELS") or Path(__file__).resolve().parents[3] / "models")
MODELS = ("text-encoder", "sentiment", "creative-labels", "ner", "music-recommender")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _check_models() -> None:
    missing = [m for m in MODELS if not (REPOSITORY / m).exists()]
    if missing:
        pytest.fail(f"models {missing} are not built: run `make models`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def repository() -> Path:
    _check_models()
    return REPOSITORY


@pytest.fixture(scope="session")
async def nlp_address(repository):
    """A real nlp-analysis server: query texts and new tracks are embedded through its EmbedText."""
    app = NlpApp(NlpSettings(host="127.0.0.1", port=0, model_repository=repository, log_format="text"))
    port = await app.start()
    yield f"127.0.0.1:{port}"
    await app.stop()


@pytest.fixture(scope="session")
def make_settings(repository, nlp_address, tmp_path_factory):
    """RecommenderSettings for a test server on a free port with its own SQLite store (or ``store_url``)."""

    def make(**kw) -> RecommenderSettings:
        kw.setdefault("store_url", f"sqlite:///{tmp_path_factory.mktemp('store')}/store.sqlite3")
        kw.setdefault("nlp_addr", nlp_address)
        kw.setdefault("retrain_interval_s", 0)
        return RecommenderSettings(host="127.0.0.1", port=0, model_repository=repository, log_format="text", **kw)

    return make


@pytest.fixture(scope="session")
async def start_app(make_settings):
    """Starts a RecommenderApp; every app started this way is stopped at the end of the session."""
    started = []

    async def start(**kw) -> tuple[RecommenderApp, str]:
        app = RecommenderApp(make_settings(**kw))
        port = await app.start()
        started.append(app)
        return app, f"127.0.0.1:{port}"

    yield start
    for app in started:
        await app.stop()


@pytest.fixture(scope="session")
async def recommender(start_app):
    return await start_app()


@pytest.fixture(scope="session")
async def stub(recommender):
    async with grpc.aio.insecure_channel(recommender[1]) as ch:
        yield recommender_pb2_grpc.MusicRecommenderStub(ch)


class PostgresCluster:
    """A throwaway PostgreSQL 15 cluster (Debian's `postgresql` package) in a temp dir owned by user postgres
    (it refuses root), on a free port, fsync on. ``stop()`` / ``start()`` simulate an outage."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.fail("PostgreSQL is not installed: run `make system` (tools/system-deps.sh)")
        self.base = Path(tempfile.mkdtemp(prefix="maas-pg-"))
        shutil.chown(self.base, "postgres")
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._pg("initdb", "-D", str(self.base / "data"), "-A", "trust", "-U", "postgres")

    def _pg(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run([*self.as_pg, str(PG_BIN / tool), *args], check=check, capture_output=True, timeout=120)

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.base / "data"), "-l", str(self.base / "log"), "-w", "-o",
                 f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=on", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop", check=False)

    def __enter__(self) -> "PostgresCluster":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """The session's PostgreSQL server (see PostgresCluster), stopped and deleted afterwards."""
    with PostgresCluster() as pg:
        yield pg.url


@pytest.fixture
def postgres_cluster():
    """A PostgreSQL server of the test's own, which the test may stop and start."""
    with PostgresCluster() as pg:
        yield pg
