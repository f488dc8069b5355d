"""The real suite as local processes, as `make up` / `make demo` / `make down` run it (own ports, own run dir)."""

import re
import subprocess
import sys

from maas_cluster.testing import isolated


def test_up_demo_down_with_the_real_services(tmp_path):
    config, env = isolated(tmp_path)  # every process on free ports, beside any suite already running
    port, metrics = int(env["NLP_PORT"]), int(env["NLP_METRICS_PORT"])
    gw_port, gw_metrics = int(env["GATEWAY_PORT"]), int(env["GATEWAY_METRICS_PORT"])

    def cluster(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "maas_cluster", "--config", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    up = cluster("up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"127.0.0.1:{port}" in up.stdout and f"127.0.0.1:{gw_port}" in up.stdout
        demo = cluster("demo", timeout=120)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert re.search(r"positive", demo.stdout, re.I) and "384" in demo.stdout
        # the same calls through the gateway (its upstream address follows NLP_PORT: `up` derives it)
        via = cluster("demo", "--service", "gateway", timeout=120)
        assert via.returncode == 0, via.stdout + via.stderr
        assert f"gateway at 127.0.0.1:{gw_port}" in via.stdout and "384" in via.stdout
        assert re.search(r"positive", via.stdout, re.I)
        import urllib.request

        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read().decode()
        assert 'maas_rpc_latency_seconds_count{code="OK",method="/maas.nlp.v1.NlpAnalysis/AnalyzeSentiment"}' in body
        assert "maas_model_batch_size_count" in body and "maas_model_queue_depth" in body
        body = urllib.request.urlopen(f"http://127.0.0.1:{gw_metrics}/metrics", timeout=5).read().decode()
        assert 'maas_rpc_latency_seconds_count{code="OK",method="/maas.nlp.v1.NlpAnalysis/EmbedText"}' in body
        # (Go's Prometheus client writes 1 where Python's wrote 1.0)
        assert re.search(r'^maas_gateway_upstream_serving\{service="maas.nlp.v1.NlpAnalysis",upstream="nlp-analysis"\} '
                         r'1(\.0)?$', body, re.M), body
    finally:
        down = cluster("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    for name in ("nlp-analysis", "gateway"):
        log = (tmp_path / "run" / "logs" / f"{name}.log").read_text()
        assert "signal received, draining" in log and "stopped" in log, name  # SIGTERM → graceful stop
    assert cluster("status").returncode == 1
