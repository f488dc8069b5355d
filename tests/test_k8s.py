"""The Kubernetes manifests (deploy/k8s): they build with kustomize, validate strictly against the Kubernetes
schemas, and mirror cluster.toml: every enabled service has a Deployment with native gRPC probes on its port and
health names, a headless Service for the gateway's client-side balancing, an autoscaler; the gateway routes each
one; the GPU overlay gives every model service a GPU and the CUDA provider."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from maas_cluster.config import load

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: it comes with requirements/dev.txt (make venv)")
    return str(found)


def build(overlay: str) -> list[dict]:
    out = subprocess.run([tool("kubectl"), "kustomize", str(ROOT / "deploy" / "k8s" / overlay)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=["base", "overlays/gpu"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict]]:
    docs = build(request.param)
    path = tmp_path_factory.mktemp("k8s") / "all.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    check = subprocess.run([tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    return request.param, docs


def find(docs: list[dict], kind: str, name: str) -> dict:
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise AssertionError(f"no {kind} {name}")


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_every_enabled_service_is_deployed_with_grpc_probes(rendered: tuple[str, list[dict]]) -> None:
    overlay, docs = rendered
    cluster = load(ROOT / "cluster.toml")
    for spec in cluster.enabled():
        deployment = find(docs, "Deployment", spec.name)
        assert deployment["metadata"]["namespace"] == "maas"
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = env_of(container)
        assert env[spec.var("port")] == str(spec.port) and env[spec.var("host")] == "0.0.0.0"
        assert {p["containerPort"] for p in container["ports"]} == {spec.port, spec.metrics_port}
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == spec.port, (spec.name, probe)
        service = container["readinessProbe"]["grpc"].get("service", "")
        assert service == "" or service in spec.grpc_services
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "cpu" in container["resources"]["requests"] and "memory" in container["resources"]["requests"]
        svc = find(docs, "Service", spec.name)
        assert {p["port"] for p in svc["spec"]["ports"]} >= {spec.port}
        find(docs, "HorizontalPodAutoscaler", spec.name)
        if spec.kind == "gateway":
            continue
        assert svc["spec"]["clusterIP"] == "None", f"{spec.name}: a headless Service (the gateway balances per call)"
        assert container["startupProbe"]["grpc"]["port"] == spec.port  # model loading is slow
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts[env[spec.var("model_repository")]]["readOnly"] is True
        assert env[spec.var("max_connection_age_s")], "connections must age out so new replicas are found"
        gpus = container["resources"].get("limits", {}).get("nvidia.com/gpu")
        if overlay == "overlays/gpu":
            assert gpus == 1 and env[spec.var("providers")] == "cuda,cpu" and env[spec.var("require_gpu")] == "true"
            assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":dev-gpu")
        else:
            assert gpus is None and env[spec.var("providers")] == "cpu"


def test_the_gateway_routes_every_enabled_service(rendered: tuple[str, list[dict]]) -> None:
    _, docs = rendered
    cluster = load(ROOT / "cluster.toml")
    env = env_of(find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0])
    for spec in cluster.enabled():
        if spec.kind != "gateway":
            addr = env.get(f"GATEWAY_{spec.name.upper().replace('-', '_')}_ADDR")
            assert addr == f"dns:///{spec.name}:{spec.port}", f"gateway: no route to {spec.name} ({addr})"
