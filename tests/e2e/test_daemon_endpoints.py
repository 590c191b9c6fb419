"""The daemon's endpoints: the group-owned unix socket, and TCP with mutual TLS."""
from __future__ import annotations

import grp
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DOCKER, DaemonProcess


def test_socket_is_0660_and_group_owned(daemon: DaemonProcess) -> None:
    info = os.stat(daemon.socket_path)
    assert stat.S_IMODE(info.st_mode) == 0o660
    try:
        gid = grp.getgrnam("dockyard").gr_gid
    except KeyError:
        pytest.skip("group dockyard does not exist (scripts/setup.sh creates it)")
    assert info.st_gid == gid


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dy-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.pem", cwd=d)


@pytest.fixture
def tls_daemon() -> Iterator[tuple[DaemonProcess, Path, int]]:
    if os.geteuid() != 0 or not shutil.which("crun") or not shutil.which("openssl"):
        pytest.skip("needs root, crun and openssl")
    base = Path(tempfile.mkdtemp(prefix="dytls-", dir="/tmp"))
    pki = base / "pki"
    pki.mkdir()
    make_pki(pki)
    port = _free_port()
    proc = DaemonProcess(base / "d")
    try:
        proc.start(extra=["-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                          "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "server.pem"),
                          "--tlskey", str(pki / "server-key.pem")])
        yield proc, pki, port
    finally:
        proc.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_tcp_with_mutual_tls(tls_daemon: tuple[DaemonProcess, Path, int]) -> None:
    proc, pki, port = tls_daemon
    env = {k: v for k, v in proc.env.items() if k != "DOCKER_HOST"}
    good = subprocess.run([DOCKER, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                           "--tlscacert", str(pki / "ca.pem"), "--tlscert", str(pki / "client.pem"),
                           "--tlskey", str(pki / "client-key.pem"), "version", "--format",
                           "{{.Server.APIVersion}}"], env=env, capture_output=True, timeout=30)
    assert good.returncode == 0 and good.stdout.strip() == b"1.50", good.stderr
    no_cert = subprocess.run([DOCKER, "-H", f"tcp://127.0.0.1:{port}", "--tls",
                              "--tlscacert", str(pki / "ca.pem"), "version"], env=env,
                             capture_output=True, timeout=30)
    assert no_cert.returncode != 0
