"""The etcd member a swarm manager runs: start, health, stop — by PID, with a pid file.

The member's data lives in ``<dir>/member``; ``<dir>/etcd.pid`` names the running process so a
daemon that was killed can find (and end) its old member at the next boot before starting a
new one: only a process whose command line names this data directory is ever signalled.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dockyard import errors

ETCD = "etcd"


def binary() -> str | None:
    return shutil.which(ETCD) or (ETCD_PATH if os.access(ETCD_PATH, os.X_OK) else None)


ETCD_PATH = "/usr/bin/etcd"


@dataclass(frozen=True)
class Member:
    """One member: ``client``/``peer`` are ``host:port`` to listen and advertise on."""
    directory: Path
    name: str
    client: str
    peer: str
    initial_cluster: str = ""  # name=http://peer,... ; empty: a new cluster of this member
    existing: bool = False

    @property
    def client_url(self) -> str:
        return f"http://{self.client}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.peer}"

    def argv(self, etcd: str) -> list[str]:
        return [etcd, "--name", self.name, "--data-dir", str(self.directory / "member"),
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
                "--initial-cluster-state", "existing" if self.existing else "new",
                "--initial-cluster-token", self.name,
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                "--logger", "zap", "--log-outputs", "stderr"]


def _pid_file(directory: Path) -> Path:
    return directory / "etcd.pid"


def _ours(pid: int, directory: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].endswith(b"etcd") and \
        str(directory / "member").encode() in cmdline


def running_pid(directory: Path) -> int | None:
    try:
        pid = int(_pid_file(directory).read_text())
    except (OSError, ValueError):
        return None
    return pid if _ours(pid, directory) else None


def check_ports(member: Member) -> None:
    """Both of the member's ports must be free: a clear error instead of etcd's log."""
    for what, addr in (("client", member.client), ("peer", member.peer)):
        host, _, port = addr.rpartition(":")
        with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as s:
            # as etcd (Go) binds: SO_REUSEADDR, so connections of a previous member still in
            # TIME_WAIT do not count as busy
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host.strip("[]"), int(port)))
            except OSError as exc:
                raise errors.InvalidArgument(
                    f"cannot listen on {addr} for the swarm's etcd {what} port: "
                    f"{exc.strerror or exc}; choose another --listen-addr (the peer port is "
                    f"the listen port + 1)") from None


def start(member: Member, timeout: float = 20.0) -> int:
    """Start the member (ending an old one of the same directory first); its pid once it
    answers /health."""
    etcd = binary()
    if etcd is None:
        raise errors.Unavailable("swarm mode needs etcd: install the etcd-server package")
    stop(member.directory)
    check_ports(member)
    member.directory.mkdir(parents=True, exist_ok=True)
    with open(member.directory / "etcd.log", "ab") as log:
        proc = subprocess.Popen(member.argv(etcd), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    tmp = _pid_file(member.directory).with_suffix(".tmp")
    tmp.write_text(str(proc.pid))
    tmp.rename(_pid_file(member.directory))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise errors.Unavailable(f"etcd exited: {_tail(member.directory)}")
        if healthy(member.client_url):
            return proc.pid
        time.sleep(0.05)
    stop(member.directory)
    raise errors.Unavailable(f"etcd did not become healthy in {timeout:g}s: "
                             f"{_tail(member.directory)}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def stop(directory: Path, timeout: float = 10.0) -> None:
    try:  # a member that ended by itself (removed from its cluster) is reaped too
        _reap(int(_pid_file(directory).read_text()))
    except (OSError, ValueError):
        pass
    pid = running_pid(directory)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _ours(pid, directory) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.02)
        if _ours(pid, directory):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    _pid_file(directory).unlink(missing_ok=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _tail(directory: Path, lines: int = 5) -> str:
    try:
        text = (directory / "etcd.log").read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text.splitlines()[-lines:])
