"""The running suite for the multi-language clients' tests, and the checks every client command line must pass.

``suite_gateway`` (package scope: up for these tests only): the whole suite as `make up` runs it (``python -m
maas_cluster up``: every enabled service of cluster.toml with the real models, then the gateway), on free ports and
its own run dir, stopped with ``down`` after the last test of tests/clients. ``MAAS_TEST_GATEWAY=host:port`` uses a suite that already runs instead (e.g. your `make up`).

``client_checks``: the Node.js and Go example clients take the same command line and print the same JSON
(proto field names, enums by name, 64-bit integers as strings), so test_node.py and test_go.py run the same checks
on their own command; see ``ClientChecks``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node"
GO_BIN = ROOT / "clients" / "go" / "build" / "maas-go"


@pytest.fixture(scope="package")
def suite_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of the gateway in front of the running suite."""
    given = os.environ.get("MAAS_TEST_GATEWAY")
    if given:
        yield given
        return
    from maas_cluster.config import load
    from maas_cluster.testing import isolated

    tmp = tmp_path_factory.mktemp("suite")
    config, env = isolated(tmp)  # every enabled service (and the gateway) on its own free ports
    gateway = next(s for s in load(config).enabled() if s.kind == "gateway")
    address = f"127.0.0.1:{env[gateway.var('port')]}"

    def cluster(*args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "maas_cluster", "--config", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    up = cluster("up", timeout=600)
    try:
        if up.returncode != 0:
            logs = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in (tmp / "run" / "logs").glob("*.log"))
            pytest.fail(f"the suite did not come up:\n{up.stdout}\n{up.stderr}\n{logs}")
        yield address
    finally:
        cluster("down", timeout=120)


@dataclass
class Cli:
    """One client's command line, run against the suite: ``cli("sentiment", "text")``."""

    argv: list[str]
    cwd: Path
    target: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "MAAS_TARGET": self.target}

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*self.argv, *args], cwd=self.cwd, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def json(self, *args: str, timeout: float = 120) -> dict:
        done = self("--json", *args, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def lines_as_they_arrive(self, *args: str, timeout: float = 120) -> list[tuple[float, dict]]:
        """Runs a streaming command with --json: (arrival time, message) for each line of its stdout."""
        proc = subprocess.Popen([*self.argv, "--json", *args], cwd=self.cwd, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1)
        out: list[tuple[float, dict]] = []
        deadline = time.monotonic() + timeout
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.append((time.monotonic(), json.loads(line)))
                assert time.monotonic() < deadline, "stream took too long"
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
        assert rc == 0, proc.stderr.read() if proc.stderr else rc
        return out


@pytest.fixture(scope="package")
def node_cli(suite_gateway: str) -> Cli:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (Node.js 18 or later; `make system`)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("clients/node is not installed: run `make clients` (npm ci in clients/node)")
    return Cli([node, "examples.mjs"], NODE_DIR, suite_gateway)


@pytest.fixture(scope="package")
def go_cli(suite_gateway: str) -> Cli:
    if not os.access(GO_BIN, os.X_OK):
        pytest.fail("clients/go/build/maas-go is not built: run `make clients` (clients/go/build.sh)")
    return Cli([str(GO_BIN)], GO_BIN.parent, suite_gateway)


@pytest.fixture()
def maas_cli(suite_gateway: str, tmp_path: Path) -> Cli:
    """The Python SDK's ``maas`` command (``python -m maas_client``), run in a fresh folder (where its files go)."""
    return Cli([sys.executable, "-m", "maas_client"], tmp_path, suite_gateway)


NEGATIVE = "This was a terrible, boring waste of time. I hated every minute of it."
POSITIVE = "I love this record, it is wonderful!"
PROMPT = "Once upon a time"


def _ints(values: Sequence[str | int]) -> list[int]:
    return [int(v) for v in values]  # int64 fields arrive as JSON strings from both clients


class ClientChecks:
    """The behaviour every example client must show against the real suite (one method per test)."""

    @staticmethod
    def sentiment(cli: Cli) -> None:
        r = cli.json("sentiment", NEGATIVE, POSITIVE)
        assert [x["label"] for x in r["results"]] == ["SENTIMENT_NEGATIVE", "SENTIMENT_POSITIVE"], r
        for x in r["results"]:
            assert math.isclose(x["negative"] + x["neutral"] + x["positive"], 1.0, abs_tol=1e-3)
        assert r["results"][0]["negative"] > 0.5 and r["model"]["name"] == "sentiment"
        human = cli("sentiment", NEGATIVE)
        assert human.returncode == 0 and human.stdout.startswith("NEGATIVE"), human.stdout + human.stderr

    @staticmethod
    def classify(cli: Cli) -> None:
        r = cli.json("--labels=sports,politics,music", "classify", "The striker scored twice in the final")
        scores = r["results"][0]["scores"]
        assert max(scores, key=lambda s: s["score"])["label"] == "sports", scores
        assert {s["label"] for s in scores} == {"sports", "politics", "music"}

    @staticmethod
    def embed(cli: Cli) -> None:
        r = cli.json("embed", "calm piano for studying", "a loud punk song")
        assert r["dimension"] == 384 and len(r["embeddings"]) == 2
        for e in r["embeddings"]:
            assert len(e["values"]) == 384
            assert math.isclose(math.sqrt(sum(v * v for v in e["values"])), 1.0, abs_tol=1e-3)

    @staticmethod
    def stream_equals_unary(cli: Cli) -> None:
        """The same seed and settings: the streamed deltas, joined, are the unary text; they arrive one by one."""
        settings = ["--seed=1234", "--temperature=0.8", "--max-new-tokens=20"]
        unary = cli.json(*settings, "generate", PROMPT)
        assert unary["text"].strip() and unary["seed"] == "1234" and int(unary["completion_tokens"]) > 0
        events = cli.lines_as_they_arrive(*settings, "stream", PROMPT)
        messages = [m for _, m in events]
        assert len(messages) > 1, messages
        assert "".join(m["text"] for m in messages) == unary["text"]
        assert messages[-1]["finish_reason"] == unary["finish_reason"] != "FINISH_REASON_UNSPECIFIED"
        assert messages[-1]["completion_tokens"] == unary["completion_tokens"]
        assert events[-1][0] - events[0][0] > 0.02, "the deltas were printed together, not as they arrived"
        human = cli(*settings, "stream", PROMPT)
        assert human.returncode == 0 and human.stdout.startswith(unary["text"]), human.stdout + human.stderr

    @staticmethod
    def invalid_argument(cli: Cli) -> None:
        """INVALID_ARGUMENT with the field named, in the message and in the google.rpc.BadRequest detail."""
        bad = cli("--json", "--temperature=-1", "generate", PROMPT)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "error: INVALID_ARGUMENT: temperature" in bad.stderr
        err = json.loads(bad.stdout)["error"]
        assert err["code"] == "INVALID_ARGUMENT" and err["request_id"]
        assert [v["field"] for v in err["field_violations"]] == ["temperature"]
        empty = cli("--json", "sentiment", "fine", "")
        assert empty.returncode == 1
        assert [v["field"] for v in json.loads(empty.stdout)["error"]["field_violations"]] == ["texts[1]"]
        unknown = cli("--json", "metadata", "no-such-model")
        assert unknown.returncode == 1 and json.loads(unknown.stdout)["error"]["code"] == "NOT_FOUND"

    @staticmethod
    def deadline(cli: Cli) -> None:
        started = time.monotonic()
        late = cli("--deadline-ms=300", "--max-new-tokens=1000", "--temperature=0", "--chat", "generate",
                   "Write a long story about a dragon and a knight.")  # greedy: a long answer, seconds of decoding
        assert late.returncode == 1 and "error: DEADLINE_EXCEEDED" in late.stderr, late.stdout + late.stderr
        assert time.monotonic() - started < 10

    @staticmethod
    def kserve(cli: Cli) -> None:
        assert cli.json("live") == {"live": True}
        meta = cli.json("metadata", "text-encoder")
        assert meta["name"] == "text-encoder" and [t["name"] for t in meta["inputs"]] == ["input_ids", "attention_mask"]
        assert meta["outputs"][0]["name"] == "embeddings" and _ints(meta["outputs"][0]["shape"]) == [-1, 384]

    @staticmethod
    def tour(cli: Cli) -> None:
        done = cli("--max-new-tokens=8", "all")
        assert done.returncode == 0, done.stdout + done.stderr
        for title in ("AnalyzeSentiment", "ClassifyText", "EmbedText", "== Generate\n", "GenerateStream",
                      "live: true", "text-encoder"):
            assert title in done.stdout, (title, done.stdout)


@pytest.fixture(scope="package")
def client_checks() -> type[ClientChecks]:
    return ClientChecks
