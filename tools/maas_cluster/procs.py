"""Local processes: pid files, logs, port checks, start detached, stop (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Instance


def pid_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def log_path(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        pid = int(text.split()[0])
    except (ValueError, IndexError):
        return None
    return pid if pid > 0 else None


def write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def alive(pid: int, proc: subprocess.Popen | None = None) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None where /proc cannot tell."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def runs_module(pid: int, module: str | None) -> bool:
    """Whether ``pid`` is ``python -m <module>`` (guards against a recycled pid in a stale pid file), or the
    executable such a module replaced itself with: ``python -m maas_gateway`` execs ``.../maas-gateway``."""
    argv = cmdline(pid)
    if argv is None:
        return True  # no /proc: trust the pid file
    if "-m" not in argv:
        return module is not None and bool(argv) and Path(argv[0]).name == module.replace("_", "-")
    return module is None or module in argv[argv.index("-m") + 1:argv.index("-m") + 2]


def running_pid(run_dir: Path, name: str, module: str | None) -> int | None:
    """The pid of a live ``name`` started by ``up``; a stale pid file is removed."""
    path = pid_path(run_dir, name)
    pid = read_pid(path)
    if pid is None:
        if path.exists():
            remove(path)
        return None
    if alive(pid) and runs_module(pid, module):
        return pid
    remove(path)
    return None


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on ``host:port`` (or binding it fails for another reason)."""
    bind_host = host.strip("[]")
    if bind_host in ("", "localhost"):
        bind_host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port in TIME_WAIT after a stop is free; a listener still conflicts.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind_host, port))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise OSError(f"cannot bind {host}: not an address of this machine") from None
            return True
    return False


def start(inst: Instance, run_dir: Path, cwd: Path) -> subprocess.Popen:
    """``python -m <module>`` in its own session, output to .run/logs/<name>.log (previous run: .log.1)."""
    log = log_path(run_dir, inst.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))
    argv = [sys.executable, "-m", inst.spec.module]
    with open(log, "ab", buffering=0) as fh:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        fh.write(f"# {stamp} maas_cluster up: {' '.join(argv)}\n".encode())
        for key, value in inst.settings().items():
            if any(word in key for word in ("KEY", "SECRET", "TOKEN", "PASSWORD")):
                value = "***"  # GATEWAY_API_KEYS and the like stay out of the log
            fh.write(f"#   {key}={value}\n".encode())
        proc = subprocess.Popen(argv, cwd=cwd, env=inst.env, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    write_pid(pid_path(run_dir, inst.name), proc.pid)
    return proc


@dataclass
class Target:
    name: str
    pid: int
    proc: subprocess.Popen | None = None  # when this process is the parent (reaps it)
    outcome: str = ""
    seconds: float = 0.0


def stop(targets: list[Target], timeout: float, poll: float = 0.1) -> list[Target]:
    """SIGTERM each, wait up to ``timeout`` s for all of them together, then SIGKILL the process group.

    ``outcome`` becomes "stopped" (graceful), "killed" (SIGKILL), "gone" (already dead) or "survived".
    """
    t0 = time.monotonic()
    waiting: list[Target] = []
    for t in targets:
        try:
            os.kill(t.pid, signal.SIGTERM)
            waiting.append(t)
        except ProcessLookupError:
            t.outcome = "gone"
    deadline = t0 + timeout
    while waiting and time.monotonic() < deadline:
        for t in list(waiting):
            if not alive(t.pid, t.proc):
                t.outcome, t.seconds = "stopped", time.monotonic() - t0
                waiting.remove(t)
        if waiting:
            time.sleep(poll)
    for t in waiting:
        _signal_group(t.pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5
    while waiting and time.monotonic() < kill_deadline:
        for t in list(waiting):
            if not alive(t.pid, t.proc):
                t.outcome, t.seconds = "killed", time.monotonic() - t0
                waiting.remove(t)
        if waiting:
            time.sleep(poll)
    for t in waiting:
        t.outcome, t.seconds = "survived", time.monotonic() - t0
    for t in targets:
        if t.outcome in ("stopped", "gone"):
            # the session leader is gone: whatever it left behind in its process group goes too
            _signal_group(t.pid, signal.SIGKILL, leader_too=False)
    return targets


def _signal_group(pgid: int, sig: int, leader_too: bool = True) -> None:
    """Signal the process group ``pgid`` (``up`` makes each service a session leader); where there is no
    such group, the process ``pgid`` itself when ``leader_too`` (it was checked alive just before)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        if leader_too:
            try:
                os.kill(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def tail(path: Path, lines: int = 40, max_bytes: int = 64 * 1024) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except FileNotFoundError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]
