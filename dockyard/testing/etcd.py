"""Real etcd servers for tests: one member (``EtcdProcess``) or a three-member Raft cluster
(``EtcdCluster``) on 127.0.0.1, free ports, temporary data directories.

Fast Raft timings (50 ms heartbeat, 500 ms election) make leader failover quick and let a lease
be granted with a 1 s ttl. ``stop`` ends each member by its PID (SIGTERM, then SIGKILL) and
removes its data directory; nothing else is touched.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def available() -> bool:
    return os.access(ETCD, os.X_OK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdProcess:
    """One etcd member. ``initial_cluster`` defaults to itself alone."""
    base: Path
    name: str = "default"
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    initial_cluster: str = ""
    tls: Path | None = None  # a ``make_certs`` directory: clients must present a certificate
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def log_path(self) -> Path:
        return self.base / f"{self.name}.log"

    def launch(self) -> None:
        """Start the process without waiting (members of a new cluster wait for each other)."""
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", self.name, "--data-dir", str(self.base / f"{self.name}.etcd"),
                 "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                 "--listen-peer-urls", self.peer_url,
                 "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
                 "--initial-cluster-state", "new", "--initial-cluster-token", self.base.name,
                 "--heartbeat-interval", "50", "--election-timeout", "500",
                 "--logger", "zap", "--log-outputs", "stderr", *self._tls_flags()],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def _tls_flags(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--cert-file", str(self.tls / "server.crt"),
                "--key-file", str(self.tls / "server.key"),
                "--trusted-ca-file", str(self.tls / "ca.crt"), "--client-cert-auth"]

    def start(self, timeout: float = 20.0) -> EtcdProcess:
        self.launch()
        self.wait_healthy(timeout)
        return self

    def healthy(self) -> bool:
        context = None
        if self.tls is not None:
            context = ssl.create_default_context(cafile=str(self.tls / "ca.crt"))
            context.load_cert_chain(self.tls / "client.crt", self.tls / "client.key")
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=1,
                                        context=context) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"etcd {self.name} exited:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError(f"etcd {self.name} not healthy in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the member by PID (a crash, for failover tests); keeps its data."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.base / f"{self.name}.etcd", ignore_errors=True)


@dataclass
class EtcdCluster:
    """``size`` members forming one Raft cluster on loopback."""
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dyetcd-")))
    size: int = 3
    members: list[EtcdProcess] = field(default_factory=list)

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        self.members = [EtcdProcess(self.base, name=f"m{i}") for i in range(self.size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        try:
            for member in self.members:
                member.initial_cluster = initial
                member.launch()
            for member in self.members:
                member.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def leader(self) -> EtcdProcess:
        """The member Raft elected leader (asked through the maintenance status call)."""
        for member in self.members:
            if member.proc is None or member.proc.poll() is not None:
                continue
            request = urllib.request.Request(member.endpoint + "/v3/maintenance/status",
                                             data=b"{}", method="POST")
            with urllib.request.urlopen(request, timeout=2) as response:
                status = json.loads(response.read())
            if status.get("leader") == status.get("header", {}).get("member_id"):
                return member
        raise RuntimeError("no etcd member reports itself leader")

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def make_certs(directory: Path) -> Path:
    """A throw-away CA plus server and client certificates for 127.0.0.1 (openssl)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(directory, "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=dockyard-test-ca")
    # etcd 3.4's JSON gateway dials its own gRPC port with the server certificate, so that
    # one must be valid for client authentication too.
    for name, usage in (("server", "serverAuth,clientAuth"), ("client", "clientAuth")):
        (directory / f"{name}.ext").write_text(
            f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        _openssl(directory, "req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=dockyard-{name}")
        _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt",
                 "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext")
    return directory


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True,
                   timeout=30)


def single(timeout: float = 20.0, tls: bool = False) -> EtcdProcess:
    """A started one-member etcd in a new temporary directory (``stop_single`` removes it);
    with ``tls``, it serves https and requires client certificates (``process.tls``)."""
    base = Path(tempfile.mkdtemp(prefix="dyetcd-"))
    process = EtcdProcess(base, tls=make_certs(base / "certs") if tls else None)
    try:
        return process.start(timeout)
    except BaseException:
        stop_single(process)
        raise


def stop_single(process: EtcdProcess) -> None:
    process.stop()
    shutil.rmtree(process.base, ignore_errors=True)
