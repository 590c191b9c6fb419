"""Push and pull through the daemon with the real docker CLI: our registry and Debian's."""
from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture
def our_registry(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve", "--listen",
                             f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def debian_registry(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("Debian's docker-registry is not installed")
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'debreg'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def roundtrip(daemon: DaemonProcess, bb_image: str, port: int) -> None:
    name = f"127.0.0.1:{port}/user/repo{uuid.uuid4().hex[:6]}:v1"
    assert daemon.docker("tag", bb_image, name).returncode == 0
    pushed = daemon.docker("push", name, timeout=120)
    assert pushed.returncode == 0, pushed.stderr
    assert b"digest: sha256:" in pushed.stdout
    assert daemon.docker("rmi", name).returncode == 0
    ran = daemon.docker("run", "--rm", name, "echo", "pulled and ran", timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b"pulled and ran\n"
    again = daemon.docker("pull", name, timeout=120)
    assert again.returncode == 0 and b"Image is up to date" in again.stdout
    digests = daemon.docker("images", "--digests", "--format", "{{.Digest}}", name)
    assert b"sha256:" in digests.stdout
    assert daemon.docker("rmi", name).returncode == 0


def test_push_pull_with_our_registry(daemon: DaemonProcess, bb_image: str,
                                     our_registry: int) -> None:
    roundtrip(daemon, bb_image, our_registry)


def test_push_pull_with_debian_registry(daemon: DaemonProcess, bb_image: str,
                                        debian_registry: int) -> None:
    roundtrip(daemon, bb_image, debian_registry)


def test_pull_of_unknown_image_is_a_clear_error(daemon: DaemonProcess,
                                                our_registry: int) -> None:
    out = daemon.docker("pull", f"127.0.0.1:{our_registry}/nobody/nothing:1", timeout=60)
    assert out.returncode != 0 and b"not found" in out.stderr.lower()


def test_login_against_an_htpasswd_registry(daemon: DaemonProcess, bb_image: str,
                                            tmp_path: Path) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    secrets = tmp_path / "htpasswd"
    secrets.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
                       + "\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve", "--listen",
                             f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg"),
                             "--htpasswd", str(secrets)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        server = f"127.0.0.1:{port}"
        bad = daemon.docker("login", "-u", "alice", "--password-stdin", server, input=b"wrong\n")
        assert bad.returncode == 1
        assert bad.stderr.decode() == (f"Error response from daemon: login attempt to "
                                       f"http://{server}/v2/ failed with status: 401 "
                                       "Unauthorized\n")
        name = f"{server}/alice/bb:1"
        daemon.docker("tag", bb_image, name)
        denied = daemon.docker("push", name, timeout=60)
        assert denied.returncode != 0
        good = daemon.docker("login", "-u", "alice", "--password-stdin", server,
                             input=b"s3cret\n")
        assert good.returncode == 0 and b"Login Succeeded" in good.stdout
        assert daemon.docker("push", name, timeout=60).returncode == 0
        daemon.docker("rmi", name)
        daemon.docker("logout", server)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_registry_down_before_and_during_push(daemon: DaemonProcess, bb_image: str,
                                              tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet
    name = f"127.0.0.1:{port}/down/big:1"
    daemon.docker("run", "--name", "writer-" + str(port), bb_image, "sh", "-c",
                  "head -c 30000000 /dev/urandom > /blob")
    assert daemon.docker("commit", "writer-" + str(port), name).returncode == 0
    refused = daemon.docker("push", name, timeout=60)
    assert refused.returncode != 0 and refused.stderr.strip()
    storage = tmp_path / "reg"

    def serve() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve",
                                 "--listen", f"127.0.0.1:{port}", "--storage", str(storage)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(port)
        return proc

    proc = serve()
    pusher = subprocess.Popen(["docker", "push", name], env=daemon.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    time.sleep(0.15)
    proc.kill()  # the registry dies mid-push
    proc.wait()
    _, err = pusher.communicate(timeout=60)  # it failed or finished; the retry must succeed
    if pusher.returncode != 0:  # one clear line naming the registry, as Go's net/http says it
        text = err.decode()
        assert len(text.splitlines()) == 1 and f"http://127.0.0.1:{port}/v2/down/big/" in text
        assert re.search(r"connection refused|connection reset by peer|broken pipe|EOF", text)
        assert "Errno" not in text and "Traceback" not in text, text
    assert_nothing_half_stored(storage)
    proc = serve()
    try:
        again = daemon.docker("push", name, timeout=120)
        assert again.returncode == 0, again.stderr
        assert daemon.docker("rmi", name).returncode == 0
        assert daemon.docker("pull", name, timeout=120).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        daemon.docker("rm", "writer-" + str(port))
        daemon.docker("rmi", name)


def assert_nothing_half_stored(storage: Path) -> None:
    """Every blob the killed registry left is complete (its bytes hash to its name), and
    every revision or tag names a manifest blob that is there."""
    blobs = storage / "blobs" / "sha256"
    for blob in (blobs.iterdir() if blobs.is_dir() else []):
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name, blob
    for rev in storage.glob("repositories/**/_manifests/revisions/sha256/*"):
        assert (blobs / rev.name).is_file(), rev
    for tag in storage.glob("repositories/**/_manifests/tags/*"):
        if not tag.name.startswith("."):
            assert (blobs / tag.read_text().strip().split(":")[1]).is_file(), tag


def test_push_pull_over_tls_to_a_local_registry(daemon: DaemonProcess, bb_image: str,
                                                tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve", "--listen",
                             f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg"),
                             "--tls-cert", str(tmp_path / "cert.pem"),
                             "--tls-key", str(tmp_path / "key.pem")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        roundtrip(daemon, bb_image, port)  # loopback is insecure: TLS is used, unverified
    finally:
        proc.terminate()
        proc.wait(timeout=10)
