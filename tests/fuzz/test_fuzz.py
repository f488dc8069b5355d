"""The fuzzer (tools/maas_fuzz) against the whole suite, straight to every service and through the gateway, on a
suite of its own (fuzzed writes, UpsertTracks and RecordInteractions among them, stay out of the other tests'
suite). Every RPC each target lists over reflection gets ``MAAS_FUZZ_EXAMPLES`` requests (300 in `make test`,
10,000 in `make fuzz`); the counts are printed. A fault (INTERNAL, UNKNOWN, UNAVAILABLE, or a server that stops
answering its health check) fails the test with the requests that caused it."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import grpc
import pytest

from maas_fuzz import discover, fuzz

EXAMPLES = int(os.environ.get("MAAS_FUZZ_EXAMPLES", "300"))
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """name -> host:port of the gateway and every service of a suite started for these tests."""
    from maas_cluster.config import load
    from maas_cluster.testing import isolated

    tmp = tmp_path_factory.mktemp("fuzzed-suite")
    config, env = isolated(tmp)
    specs = load(config).enabled()
    addresses = {s.name: f"127.0.0.1:{env[s.var('port')]}" for s in specs}

    def cluster(*args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "maas_cluster", "--config", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    up = cluster("up", timeout=600)
    try:
        if up.returncode != 0:
            pytest.fail(f"the suite did not come up:\n{up.stdout}\n{up.stderr}")
        yield addresses
    finally:
        cluster("down", timeout=120)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", ["nlp-analysis", "text-generator", "music-generator", "music-recommender",
                                  "gateway"])
def test_every_rpc_holds_under_fuzzed_requests(targets, name, capsys):
    if name not in targets:
        pytest.fail(f"{name} is not enabled in cluster.toml")
    lines, faults = [], []
    with grpc.insecure_channel(targets[name]) as channel:
        methods = discover(channel)
        assert len(methods) >= 6, [m.path for m in methods]  # at least its own RPCs and the KServe ones
        for method in methods:
            report = fuzz(channel, method, EXAMPLES, TIMEOUT_S)
            lines.append(report.line())
            faults += [f"{method.path}: {f}" for f in report.faults]
            assert report.sent >= min(EXAMPLES, 50) or not method.descriptor.input_type.fields, report.line()
    with capsys.disabled():
        print(f"\nfuzzed {name} ({targets[name]}):\n  " + "\n  ".join(lines))
    assert not faults, "\n".join(faults)
