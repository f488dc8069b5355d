"""``python -m maas_cluster {up,down,status,demo}``: the suite as local processes, no Docker."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from . import health, procs
from .config import TIMEOUT_ENV, ClusterConfig, ConfigError, Instance, load

LOG_TAIL_LINES = 40
PROBE_INTERVAL_S = 0.5
PROGRESS_EVERY_S = 15.0
# The whole server reports SERVING but a name from grpc_services stays unknown to its health service this long:
# cluster.toml and the server disagree, waiting longer will not help.
UNKNOWN_NAME_GRACE_S = 10.0


class UpFailed(Exception):
    pass


def _err(msg: str) -> None:
    print(f"maas_cluster: {msg}", file=sys.stderr, flush=True)


def _say(msg: str) -> None:
    print(msg, flush=True)


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# ---------------------------------------------------------------------------------------------------- up


def cmd_up(cfg: ClusterConfig, args: argparse.Namespace) -> int:
    specs = cfg.select(args.names, enabled_only=True)
    if args.names:
        off = [s.name for s in specs if not s.enabled]
        if off:
            _err(f"refusing: {', '.join(off)} disabled in {_rel(cfg.path)} (set enabled = true)")
            return 1
    if not specs:
        _say(f"nothing to start: no service is enabled in {_rel(cfg.path)}")
        return 0
    timeout = _startup_timeout(cfg, args.timeout)
    instances = [cfg.instance(s) for s in specs]
    # Already running and healthy: nothing to do for it (so `make demo` can be run again).
    running = [i for i in instances if procs.running_pid(cfg.run_dir, i.name, i.spec.module) is not None
               and health.is_serving(health.probe(i.address, i.spec.grpc_services, timeout=2.0))]
    for inst in running:
        _say(f"{inst.name} already runs and is SERVING on {inst.address}")
    instances = [i for i in instances if i not in running]
    if not instances:
        return 0

    problems = _preflight(cfg, instances)
    if problems:
        for p in problems:
            _err(f"refusing to start: {p}")
        return 1

    started: list[tuple[Instance, subprocess.Popen]] = []
    try:
        for stage in _stages(instances):
            group: list[tuple[Instance, subprocess.Popen]] = []
            for inst in stage:
                try:
                    proc = procs.start(inst, cfg.run_dir, cfg.root)
                except OSError as e:
                    _err(f"{inst.name} failed to start: {e}")
                    raise UpFailed from None
                group.append((inst, proc))
                started.append((inst, proc))
                _say(f"started {inst.name}: python -m {inst.spec.module} on {inst.host}:{inst.port} "
                     f"(pid {proc.pid}, log {_rel(procs.log_path(cfg.run_dir, inst.name))})")
            _wait_serving(cfg, group, timeout)
    except UpFailed:
        _cleanup(cfg, started, args.keep_on_failure)
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        _cleanup(cfg, started, args.keep_on_failure)
        return 130

    rows = [["NAME", "ADDRESS", "METRICS", "PID", "HEALTH"]]
    for inst, proc in started:
        rows.append([inst.name, inst.address, inst.metrics_url or "-", str(proc.pid), health.SERVING])
    _say("")
    _say(_table(rows))
    _say(f"\nlogs in {_rel(cfg.run_dir / 'logs')}/; `make status` to check, `make down` to stop")
    return 0


def _startup_timeout(cfg: ClusterConfig, flag: float | None) -> float:
    if flag is not None:
        value, source = flag, "--timeout"
    elif os.environ.get(TIMEOUT_ENV):
        try:
            value, source = float(os.environ[TIMEOUT_ENV]), TIMEOUT_ENV
        except ValueError:
            raise ConfigError(f"{TIMEOUT_ENV}={os.environ[TIMEOUT_ENV]!r} is not a number of seconds") from None
    else:
        value, source = cfg.startup_timeout_s, "startup_timeout_s"
    if value <= 0:
        raise ConfigError(f"{source}: the startup timeout must be positive, not {value}")
    return value


def _preflight(cfg: ClusterConfig, instances: list[Instance]) -> list[str]:
    """Everything that would make a start fail, checked before anything starts."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for inst in instances:
        pid = procs.running_pid(cfg.run_dir, inst.name, inst.spec.module)
        if pid is not None:
            problems.append(f"{inst.name} already runs (pid {pid}, {inst.address}); `make down` stops it")
            continue
        for var, port in ((inst.spec.var("port"), inst.port), (inst.spec.var("metrics_port"), inst.metrics_port)):
            if port is None:
                continue
            if port in seen:
                problems.append(f"{inst.name}: {var}={port} is also the port of {seen[port]}")
                continue
            seen[port] = f"{inst.name} ({var})"
            try:
                taken = procs.port_in_use(inst.host, port)
            except OSError as e:
                problems.append(f"{inst.name}: {inst.spec.var('host')}: {e}")
                break
            if taken:
                problems.append(f"{inst.name}: port {port} on {inst.host} ({var}) is already in use by another "
                                f"process; stop it, or move {inst.name} with {var}=<free port>")
    return problems


def _stages(instances: list[Instance]) -> list[list[Instance]]:
    """Services first, the gateway once they all serve."""
    services = [i for i in instances if i.spec.kind != "gateway"]
    gateway = [i for i in instances if i.spec.kind == "gateway"]
    return [s for s in (services, gateway) if s]


def _wait_serving(cfg: ClusterConfig, group: list[tuple[Instance, subprocess.Popen]], timeout: float) -> None:
    """Until every process of ``group`` reports SERVING (overall and per name); raises UpFailed."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    pending = {inst.name: (inst, proc) for inst, proc in group}
    last: dict[str, dict[str, str]] = {}
    unknown_since: dict[str, float] = {}
    next_note = t0 + PROGRESS_EVERY_S
    while pending:
        for name, (inst, proc) in list(pending.items()):
            rc = proc.poll()
            if rc is not None:
                _fail(cfg, inst, f"exited with code {rc} before reporting SERVING")
            remaining = max(0.2, deadline - time.monotonic())
            statuses = health.probe(inst.address, inst.spec.grpc_services, timeout=min(2.0, remaining))
            last[name] = statuses
            if health.is_serving(statuses):
                del pending[name]
                _say(f"{name} is SERVING on {inst.address} after {time.monotonic() - t0:.1f} s")
                continue
            unknown = [n for n, s in statuses.items() if n and s == health.NOT_FOUND]
            if statuses.get("") == health.SERVING and unknown:
                since = unknown_since.setdefault(name, time.monotonic())
                if time.monotonic() - since > UNKNOWN_NAME_GRACE_S:
                    _fail(cfg, inst, f"the server is SERVING but has no health status for "
                                     f"{', '.join(unknown)}; check grpc_services in {_rel(cfg.path)}")
            else:
                unknown_since.pop(name, None)
        if not pending:
            break
        now = time.monotonic()
        if now >= deadline:
            for name, (inst, _) in pending.items():
                _fail(cfg, inst, f"not SERVING after {timeout:g} s (last health: "
                                 f"{health.summary(last.get(name, {}))}); raise the limit with --timeout or "
                                 f"{TIMEOUT_ENV}", raise_=False)
            raise UpFailed
        if now >= next_note:
            waiting = ", ".join(f"{n} ({health.summary(last.get(n, {}))})" for n in pending)
            _say(f"  waiting for {waiting}: {now - t0:.0f} s of {timeout:g} s")
            next_note += PROGRESS_EVERY_S
        time.sleep(PROBE_INTERVAL_S)


def _fail(cfg: ClusterConfig, inst: Instance, why: str, raise_: bool = True) -> None:
    log = procs.log_path(cfg.run_dir, inst.name)
    _err(f"{inst.name} failed to start: {why}")
    lines = procs.tail(log, LOG_TAIL_LINES)
    print(f"----- last {len(lines)} lines of {_rel(log)} -----", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    print("-----", file=sys.stderr, flush=True)
    if raise_:
        raise UpFailed


def _cleanup(cfg: ClusterConfig, started: list[tuple[Instance, subprocess.Popen]], keep: bool) -> None:
    if not started:
        return
    if keep:
        _err(f"--keep-on-failure: left running: {', '.join(i.name for i, _ in started)} (`make down` stops them)")
        return
    targets = [procs.Target(inst.name, proc.pid, proc) for inst, proc in reversed(started)]
    procs.stop(targets, cfg.stop_timeout_s)
    for inst, _ in started:
        procs.remove(procs.pid_path(cfg.run_dir, inst.name))
    _err(f"stopped what this command started: {', '.join(t.name for t in targets)}")


# -------------------------------------------------------------------------------------------------- down


def cmd_down(cfg: ClusterConfig, args: argparse.Namespace) -> int:
    timeout = cfg.stop_timeout_s if args.timeout is None else args.timeout
    known = {s.name: s for s in cfg.services}
    if args.names:
        names = [s.name for s in cfg.select(args.names, enabled_only=False)]
    else:
        # every table, enabled or not (it may have been disabled while running), and any other pid file
        names = [s.name for s in cfg.services]
        if cfg.run_dir.is_dir():
            names += sorted(p.stem for p in cfg.run_dir.glob("*.pid") if p.stem not in known)
    # the gateway first, then services in reverse start order
    names = sorted(reversed(names), key=lambda n: 0 if n in known and known[n].kind == "gateway" else 1)

    targets: list[procs.Target] = []
    for name in names:
        path = procs.pid_path(cfg.run_dir, name)
        had_file = path.exists()
        pid = procs.running_pid(cfg.run_dir, name, known[name].module if name in known else None)
        if pid is not None:
            targets.append(procs.Target(name, pid))
        elif had_file:
            _say(f"{name}: not running (stale pid file removed)")
    if not targets:
        _say("nothing running")
        return 0
    for t in targets:
        _say(f"stopping {t.name} (pid {t.pid}) ...")
    procs.stop(targets, timeout)
    rc = 0
    for t in targets:
        if t.outcome == "stopped":
            _say(f"{t.name}: stopped after {t.seconds:.1f} s")
        elif t.outcome == "gone":
            _say(f"{t.name}: already gone")
        elif t.outcome == "killed":
            _say(f"{t.name}: did not stop within {timeout:g} s of SIGTERM: killed (SIGKILL)")
        else:
            _err(f"{t.name}: pid {t.pid} survived SIGKILL")
            rc = 1
            continue
        procs.remove(procs.pid_path(cfg.run_dir, t.name))
    return rc


# ------------------------------------------------------------------------------------------------ status


def cmd_status(cfg: ClusterConfig, args: argparse.Namespace) -> int:
    specs = cfg.select(args.names, enabled_only=False)
    rows = [["NAME", "ENABLED", "ADDRESS", "METRICS", "PID", "HEALTH"]]
    all_serving = True
    for spec in specs:
        inst = cfg.instance(spec)
        pid = procs.running_pid(cfg.run_dir, spec.name, spec.module)
        if spec.enabled or pid is not None or args.names:
            statuses = health.probe(inst.address, spec.grpc_services, timeout=args.timeout)
            state = health.summary(statuses)
            if state == "UNAVAILABLE":
                state = "DOWN (nothing answers)" if pid is None else "UNAVAILABLE (starting?)"
            if spec.enabled and not health.is_serving(statuses):
                all_serving = False
        else:
            state = "disabled"
        rows.append([spec.name, "yes" if spec.enabled else "no", inst.address, inst.metrics_url or "-",
                     str(pid) if pid is not None else "-", state])
    _say(_table(rows))
    return 0 if all_serving else 1


# -------------------------------------------------------------------------------------------------- main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m maas_cluster", description=__doc__)
    p.add_argument("--config", type=Path, default=None,
                   help="cluster.toml to use (default: $MAAS_CLUSTER_CONFIG, else the repository's)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{up,down,status,demo}")

    up = sub.add_parser("up", help="start every enabled service, detached; wait until each is SERVING")
    up.add_argument("names", nargs="*", help="only these services (default: every enabled one)")
    up.add_argument("--timeout", type=float, default=None,
                    help=f"seconds to wait for SERVING (default: ${TIMEOUT_ENV}, else startup_timeout_s, 300)")
    up.add_argument("--keep-on-failure", action="store_true",
                    help="leave the processes running when one fails (default: stop what this command started)")

    down = sub.add_parser("down", help="SIGTERM, wait for a graceful stop, then SIGKILL (idempotent)")
    down.add_argument("names", nargs="*", help="only these services (default: all)")
    down.add_argument("--timeout", type=float, default=None, help="graceful stop limit (default stop_timeout_s, 30)")

    status = sub.add_parser("status", help="grpc.health.v1 of each service; exit 1 unless all enabled serve")
    status.add_argument("names", nargs="*")
    status.add_argument("--timeout", type=float, default=2.0, help="seconds per health check")

    demo = sub.add_parser("demo", help="call the running nlp-analysis and print what it answers")
    demo.add_argument("--service", default="nlp-analysis", help="cluster.toml name of the nlp-analysis service")
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds per RPC")
    return p


COMMANDS: dict[str, Callable[[ClusterConfig, argparse.Namespace], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = load(args.config)
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(cfg, args.service, args.timeout)
        return COMMANDS[args.command](cfg, args)
    except ConfigError as e:
        _err(str(e))
        return 2
