"""A real dockyard daemon in a private data-root, socket and cgroup parent, for tests,
benchmarks and the demo. Everything it creates is removed by ``stop``."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.testing.rootfs import busybox_rootfs_tar

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


@dataclass
class DaemonProcess:
    base: Path
    prefix: str = field(default_factory=lambda: "dy" + uuid.uuid4().hex[:8])
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.base / "run" / "dockyard.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_CONFIG"] = str(self.base / "docker-config")
        return env

    @property
    def cgroup_parent(self) -> str:
        return f"{self.prefix}-cg"

    @property
    def bridge(self) -> str:
        return f"dy{self.prefix[2:8]}0"

    @property
    def chain_prefix(self) -> str:
        return "DOCKYARD" + self.prefix[2:10].upper()

    def start(self, timeout: float = 30.0, extra: list[str] | None = None) -> None:
        (self.base / "run").mkdir(parents=True, exist_ok=True)
        (self.base / "docker-config").mkdir(exist_ok=True)
        log = open(self.base / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli.main", "daemon", "-H", self.host,
             "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "run"),
             "--cgroup-parent", self.cgroup_parent, "--bridge", self.bridge,
             "--iptables-chain", self.chain_prefix, "--ip-forward", "false", "--offline",
             "--swarm-publish-addr", "127.0.0.1",  # a routing mesh answers on loopback only
             *(extra or [])],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited:\n" + self.log_text())
            if self._pings():
                return
            time.sleep(0.05)
        raise RuntimeError("daemon did not answer in time:\n" + self.log_text())

    def _pings(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(str(self.socket_path))
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return b"200 OK" in s.recv(100)
        except OSError:
            return False

    def log_text(self) -> str:
        try:
            return (self.base / "daemon.log").read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([DOCKER, *args], env=self.env, input=input, capture_output=True,
                              timeout=timeout, check=check)

    def import_busybox(self, name: str = "bb:latest") -> None:
        out = self.docker("import", "-", name, input=busybox_rootfs_tar())
        if out.returncode != 0:
            raise RuntimeError(f"import failed: {out.stderr.decode()}")

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop_process(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Remove every container, stop the daemon, and clean what it left on the host."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.decode().split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=120)
            self.docker("network", "prune", "-f", timeout=60)
        self.stop_process()
        cleanup_host(self.base, self.cgroup_parent)
        cleanup_network(self.bridge, self.chain_prefix)


def cleanup_host(base: Path, cgroup_parent: str) -> None:
    """Kill leftover shims/containers of this run (by PID), unmount, remove cgroups, dirs."""
    for pid in _pids_under(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for runtime in ("crun", "runc"):
        root = base / "run" / "runtime" / runtime
        if root.exists() and shutil.which(runtime):
            for entry in root.iterdir():
                subprocess.run([runtime, "--root", str(root), "delete", "-f", entry.name],
                               capture_output=True)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1].startswith(str(base))]
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)
    _remove_cgroups(cgroup_parent)
    shutil.rmtree(base, ignore_errors=True)


def cleanup_network(bridge: str, chain_prefix: str) -> None:
    """The run's default bridge and every iptables chain/rule of its prefix."""
    subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    try:
        from dockyard.host.firewall import Firewall
        Firewall(chain_prefix).teardown()
    except Exception:  # noqa: BLE001 - best effort: iptables may be missing
        pass


def _pids_under(base: Path) -> list[int]:
    """Shims (and swarm etcd members) whose command line names this run's directories."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if str(base).encode() in cmdline and (b"dockyard-shim" in cmdline
                                              or cmdline.startswith(b"/usr/bin/etcd ")
                                              or cmdline.startswith(b"etcd ")):
            found.append(int(proc.name))
    return found


def _remove_cgroups(parent: str) -> None:
    """rmdir the run's cgroup parent everywhere; retried while a runtime finishes deleting."""
    for _ in range(40):
        if not _remove_cgroups_once(parent):
            return
        time.sleep(0.05)


def _remove_cgroups_once(parent: str) -> bool:
    """True while something is left."""
    left = False
    root = Path("/sys/fs/cgroup")
    candidates = [root / parent] + [d / parent for d in root.iterdir() if d.is_dir()]
    for directory in candidates:
        if not directory.is_dir():
            continue
        for child in sorted(directory.rglob("*"), key=lambda p: len(str(p)), reverse=True):
            if child.is_dir():
                try:
                    child.rmdir()
                except OSError:
                    pass
        try:
            directory.rmdir()
        except OSError:
            left = True
    return left


