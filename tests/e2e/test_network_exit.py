"""A daemon that exits with no container running leaves no bridge and no iptables chain; the
next boot puts them back."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("crun"),
                                reason="needs root and crun")


def traces(d: DaemonProcess) -> tuple[bool, int]:
    link = subprocess.run(["ip", "link", "show", d.bridge], capture_output=True).returncode == 0
    rules = sum(subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                               text=True).stdout.count(d.chain_prefix)
                for table in ("filter", "nat"))
    return link, rules


def test_clean_exit_removes_bridge_and_chains_and_boot_restores_them() -> None:
    d = DaemonProcess(Path(tempfile.mkdtemp(prefix="dytest-", dir="/tmp")))
    try:
        d.start()
        d.import_busybox()
        assert d.docker("run", "--rm", "-p", "127.0.0.1::80", "bb", "true").returncode == 0
        link, rules = traces(d)
        assert link and rules > 0
        d.stop_process()
        assert traces(d) == (False, 0)
        d.start()
        assert d.docker("run", "--rm", "-p", "127.0.0.1::80", "bb", "true").returncode == 0
        assert traces(d)[0]
        assert d.docker("run", "-d", "--name", "stays", "bb", "sleep", "60").returncode == 0
        d.stop_process()
        link, rules = traces(d)
        assert link and rules > 0, "a running container keeps its network"
        d.start()
        assert d.docker("rm", "-f", "stays").returncode == 0
    finally:
        d.stop()
