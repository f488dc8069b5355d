"""An acknowledged RecordInteractions survives kill -9 of the server process (SQLite WAL with synchronous=FULL;
PostgreSQL commits), and the restarted server dedupes the client's retry of the same batch."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas.music.v1 import recommender_pb2 as pb
from maas.music.v1 import recommender_pb2_grpc

TRACK = "m21:bach/bwv66.6.mxl"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(repository, store_url: str) -> tuple[subprocess.Popen, str]:
    port = _port()
    env = {**os.environ, "MUSICREC_HOST": "127.0.0.1", "MUSICREC_PORT": str(port),
           "MUSICREC_MODEL_REPOSITORY": str(repository), "MUSICREC_STORE_URL": store_url,
           "MUSICREC_NLP_ADDR": "127.0.0.1:1", "MUSICREC_LOG_LEVEL": "WARNING", "MUSICREC_RETRAIN_INTERVAL_S": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "music_recommender"], env=env, stdout=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    with grpc.insecure_channel(address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the server exited during start-up"
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return proc, address
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError("music-recommender did not become SERVING")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_acknowledged_events_survive_kill_9(engine, repository, tmp_path, request):
    url = f"sqlite:///{tmp_path}/store.sqlite3" if engine == "sqlite" else request.getfixturevalue("postgres_url")
    user = f"durable-{engine}-{time.time_ns()}"
    batch = pb.RecordInteractionsRequest(events=[
        pb.InteractionEvent(event_id=f"{user}-{i}", user_id=user, track_id=TRACK, type=pb.INTERACTION_TYPE_PLAY)
        for i in range(3)])
    proc, address = _start(repository, url)
    try:
        with grpc.insecure_channel(address) as ch:
            stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
            before = stub.GetTrack(pb.GetTrackRequest(track_id=TRACK)).interaction_count
            assert stub.RecordInteractions(batch).recorded == 3
        os.kill(proc.pid, signal.SIGKILL)  # no graceful stop, no flush: straight after the acknowledgement
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc, address = _start(repository, url)
    try:
        with grpc.insecure_channel(address) as ch:
            stub = recommender_pb2_grpc.MusicRecommenderStub(ch)
            assert stub.GetTrack(pb.GetTrackRequest(track_id=TRACK)).interaction_count == before + 3
            retry = stub.RecordInteractions(batch)  # the client never saw the answer: it retries
            assert (retry.recorded, retry.duplicates) == (0, 3)
            assert not stub.Recommend(pb.RecommendRequest(user_id=user, k=3)).cold_start
    finally:
        proc.terminate()
        proc.wait(30)
