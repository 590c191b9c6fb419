"""Shared fixtures: one real daemon per test session, with a busybox image ``bb:latest``."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("crun"),
                                reason="needs root and crun")


@pytest.fixture(scope="session")
def daemon() -> Iterator[DaemonProcess]:
    if os.geteuid() != 0 or not shutil.which("crun"):
        pytest.skip("needs root and crun")
    base = Path(tempfile.mkdtemp(prefix="dytest-", dir="/tmp"))
    proc = DaemonProcess(base)
    try:
        proc.start()
        proc.import_busybox("bb:latest")
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def bb_image(daemon: DaemonProcess) -> str:
    return "bb:latest"


@pytest.fixture
def docker_client(daemon: DaemonProcess):  # type: ignore[no-untyped-def]
    import docker
    client = docker.DockerClient(base_url=daemon.host, version="1.44", timeout=60)
    yield client
    client.close()
