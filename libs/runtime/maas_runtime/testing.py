"""Test support shared by every service's tests: the fields a refused call names, and a server driven by NVIDIA's
own KServe v2 client.

tritonclient pins protobuf < 7, so it lives in its own virtual environment (``.venv-triton``, made by
``make venv``) and runs as a subprocess: ``tests/clients/triton_check.py`` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def violations(err: Any) -> list[str]:
    """The fields named by the google.rpc.BadRequest detail (the first detail) of a failed call."""
    from google.rpc import error_details_pb2, status_pb2

    status = status_pb2.Status.FromString(dict(err.trailing_metadata() or ())["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details and status.details[0].Unpack(bad), f"no BadRequest detail in {status}"
    return [v.field for v in bad.field_violations]
TRITON_PYTHON = ROOT / ".venv-triton" / "bin" / "python"
TRITON_CHECK = ROOT / "tests" / "clients" / "triton_check.py"


async def triton_check(address: str, model: str, inputs: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, the JSON it printed, stderr) of triton_check.py against ``address``."""
    if not TRITON_PYTHON.exists():
        raise FileNotFoundError(f"{TRITON_PYTHON} is missing: `make venv` builds the tritonclient environment")
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("pythonpath", "http_proxy", "https_proxy", "grpc_proxy", "all_proxy")}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    proc = await asyncio.create_subprocess_exec(
        str(TRITON_PYTHON), str(TRITON_CHECK), "--url", address, "--model", model, "--inputs", json.dumps(inputs),
        *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = stdout.decode().strip().splitlines()
    assert lines, f"triton_check printed nothing; stderr:\n{stderr.decode()}"
    return proc.returncode, json.loads(lines[-1]), stderr.decode()
