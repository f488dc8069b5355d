"""The ``maas`` command against a running gateway (as a process, as a user runs it)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from maas_runtime.errors import Overloaded


async def maas(*args: str, env: dict | None = None, launcher: bool = False) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).parent / "maas")] if launcher else [sys.executable, "-m", "maas_client"]
    run_env = {**os.environ, **(env or {})}
    for var in ("MAAS_TARGET", "MAAS_API_KEY"):
        if env is None or var not in env:
            run_env.pop(var, None)
    return await asyncio.to_thread(subprocess.run, [*cmd, *args], capture_output=True, text=True, timeout=60,
                                   env=run_env)


async def test_sentiment_classify_embed_entities(stub_suite: dict) -> None:
    target = ["--target", stub_suite["address"]]
    out = await maas(*target, "sentiment", "I love this record!", "meh")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith("positive  negative 0.10  neutral 0.20  positive 0.70  I love")
    assert len(out.stdout.splitlines()) == 2

    out = await maas(*target, "classify", "The striker scored twice", "--labels", "sports, politics")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "The striker scored twice"
    assert "sports" in out.stdout.splitlines()[1] and "politics" in out.stdout.splitlines()[2]

    out = await maas(*target, "classify", "slow sad piano at 3am")
    assert "mood   melancholic" in out.stdout and "genre  jazz" in out.stdout

    out = await maas(*target, "embed", "calm piano")
    assert out.returncode == 0 and "dimension 2  norm 1.000  [+0.6000, +0.8000]  calm piano" in out.stdout

    out = await maas(*target, "entities", "She played London")
    assert "GPE" in out.stdout and "[11, 17)  London" in out.stdout


async def test_json_output(stub_suite: dict) -> None:
    out = await maas("--target", stub_suite["address"], "--json", "sentiment", "great")
    reply = json.loads(out.stdout)
    assert reply["results"][0]["label"] == "SENTIMENT_POSITIVE" and reply["model"]["name"] == "stub"


async def test_health_lists_every_routed_service(stub_suite: dict) -> None:
    out = await maas("--target", stub_suite["address"], "health")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split() for line in out.stdout.splitlines())
    assert lines == {"(gateway)": "SERVING", "maas.nlp.v1.NlpAnalysis": "SERVING", "maas.testing.v1.Echo": "SERVING"}


async def test_errors_say_what_and_exit_1(stub_suite: dict) -> None:
    out = await maas("--target", stub_suite["address"], "sentiment", "fine", "bad")
    assert out.returncode == 1
    assert "sentiment failed: INVALID_ARGUMENT: texts[1]: is refused by the stub (request id " in out.stderr
    assert "  texts[1]: is refused by the stub" in out.stderr

    stub_suite["nlp"].fail_next(*[Overloaded("queue full", retry_after_s=0.05)] * 10)
    try:
        out = await maas("--target", stub_suite["address"], "embed", "x")
    finally:
        stub_suite["nlp"].failures.clear()
    assert out.returncode == 1 and "RESOURCE_EXHAUSTED" in out.stderr and "retry after 0.05 s" in out.stderr

    out = await maas("--target", stub_suite["address"], "sentiment")
    assert out.returncode == 2 and "TEXT" in out.stderr  # usage


async def test_target_and_api_key_from_the_environment_and_the_launcher(stub_suite: dict) -> None:
    env = {"MAAS_TARGET": stub_suite["keyed"], "MAAS_API_KEY": "sdk-key"}
    out = await maas("embed", "x", env=env, launcher=True)  # .venv/bin/maas, made by `make venv`
    assert out.returncode == 0, out.stderr
    out = await maas("embed", "x", env={"MAAS_TARGET": stub_suite["keyed"]})
    assert out.returncode == 1 and "UNAUTHENTICATED" in out.stderr


async def test_real_models_through_the_gateway(real_suite: str) -> None:
    """The command a user types, the real nlp-analysis answering through the gateway."""
    out = await maas("--target", real_suite, "sentiment", "I absolutely love this song, it is wonderful!")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("positive")
    out = await maas("--target", real_suite, "classify", "The striker scored twice in the final",
                     "--labels", "sports,cooking,politics")
    assert out.stdout.splitlines()[1].split()[0] == "sports"
    out = await maas("--target", real_suite, "embed", "calm piano for studying")
    assert "dimension 384  norm 1.000" in out.stdout
