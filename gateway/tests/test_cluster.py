"""The gateway as `make up` runs it: real processes from a cluster.toml, the upstream's address derived by
maas_cluster (GATEWAY_<NAME>_ADDR, following the service's port override), SIGTERM drains."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas_gateway.testing import CHANNEL_OPTIONS, free_port, protos

pb, pb_grpc = protos()


def run_cluster(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maas_cluster", "--config", str(config), *args], env=env,
                          capture_output=True, text=True, timeout=120)


async def test_up_routes_the_enabled_services_through_the_gateway(tmp_path: Path) -> None:
    echo_port, gw_port, gw_metrics = free_port(), free_port(), free_port()
    config = tmp_path / "cluster.toml"
    config.write_text(textwrap.dedent(f"""
        [cluster]
        startup_timeout_s = 60
        stop_timeout_s = 15

        [services.echo-service]
        module = "maas_gateway.testing"
        env_prefix = "ECHO_"
        port = 1
        grpc_services = ["maas.testing.v1.Echo"]

        [gateway]
        module = "maas_gateway"
        env_prefix = "GATEWAY_"
        port = {gw_port}
        metrics_port = {gw_metrics}
        grpc_services = ["maas.testing.v1.Echo"]
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "ECHO_"))}
    env["ECHO_PORT"] = str(echo_port)  # the caller moves the service; the gateway must follow
    env["GATEWAY_API_KEYS"] = "do-not-log-me"

    up = await asyncio.to_thread(run_cluster, config, env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gw_port}", options=CHANNEL_OPTIONS) as ch:
            reply = await pb_grpc.EchoStub(ch).Unary(pb.EchoRequest(text="through"), timeout=10,
                                                     metadata=(("x-api-key", "do-not-log-me"),))
            assert reply.text == "through"
            health = health_pb2_grpc.HealthStub(ch)
            status = await health.Check(health_pb2.HealthCheckRequest(service="maas.testing.v1.Echo"), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{gw_metrics}/metrics", timeout=5).read().decode())
        # (Go's Prometheus client writes 1 where Python's wrote 1.0)
        assert re.search(r'^maas_gateway_upstream_serving\{service="maas.testing.v1.Echo",upstream="echo-service"\} '
                         r'1(\.0)?$', metrics, re.M), metrics
        status = await asyncio.to_thread(run_cluster, config, env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        down = await asyncio.to_thread(run_cluster, config, env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    log = (tmp_path / ".run" / "logs" / "gateway.log").read_text()
    assert f"GATEWAY_ECHO_SERVICE_ADDR=127.0.0.1:{echo_port}" in log  # derived by `up`, after ECHO_PORT
    assert "GATEWAY_API_KEYS=***" in log and "do-not-log-me" not in log
    assert "upstream discovered" in log and "signal received, draining" in log and "stopped" in log
