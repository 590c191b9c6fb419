"""Containers outlive the daemon: kill -9 it, start it again, and everything is still there."""
from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


@pytest.fixture
def own_daemon() -> Iterator[DaemonProcess]:
    import os
    import shutil
    if os.geteuid() != 0 or not shutil.which("crun"):
        pytest.skip("needs root and crun")
    proc = DaemonProcess(Path(tempfile.mkdtemp(prefix="dyrestart-", dir="/tmp")))
    try:
        proc.start()
        proc.import_busybox()
        yield proc
    finally:
        proc.stop()


def _state(d: DaemonProcess, name: str) -> dict[str, object]:
    out = d.docker("inspect", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]["State"]  # type: ignore[no-any-return]


def test_kill9_keeps_containers_running_and_readopts(own_daemon: DaemonProcess) -> None:
    d = own_daemon
    assert d.docker("run", "-d", "--name", "survivor", "bb", "sh", "-c",
                    "while true; do echo tick; sleep 0.2; done").returncode == 0
    assert d.docker("run", "-d", "--name", "ender", "bb", "sh", "-c", "sleep 1; exit 4"
                    ).returncode == 0
    pid = _state(d, "survivor")["Pid"]
    d.kill9()
    time.sleep(1.5)  # "ender" exits while no daemon is running
    d.start()
    survivor = _state(d, "survivor")
    assert survivor["Running"] is True and survivor["Pid"] == pid
    ender = _state(d, "ender")
    assert ender["Status"] == "exited" and ender["ExitCode"] == 4
    assert b"tick" in d.docker("logs", "survivor").stdout
    assert d.docker("exec", "survivor", "true").returncode == 0
    assert d.docker("stop", "-t", "1", "survivor").returncode == 0
    assert _state(d, "survivor")["Status"] == "exited"


def test_restart_policies_across_daemon_restart(own_daemon: DaemonProcess) -> None:
    d = own_daemon
    assert d.docker("run", "-d", "--name", "always", "--restart", "always", "bb", "sleep",
                    "300").returncode == 0
    assert d.docker("run", "-d", "--name", "stopped", "--restart", "unless-stopped", "bb",
                    "sleep", "300").returncode == 0
    assert d.docker("stop", "-t", "0", "stopped").returncode == 0
    d.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "bb", "sh", "-c",
             "exit 1")
    deadline = time.time() + 10
    while time.time() < deadline and _state(d, "flaky")["Status"] != "exited":
        time.sleep(0.1)
    time.sleep(1)
    flaky = json.loads(d.docker("inspect", "flaky").stdout)[0]
    assert flaky["RestartCount"] == 2 and flaky["State"]["Status"] == "exited"
    # kill the "always" container's process behind the daemon's back: it comes back
    d.kill9()
    d.start()
    assert _state(d, "always")["Running"] is True
    assert _state(d, "stopped")["Running"] is False
    pid = _state(d, "always")["Pid"]
    import os
    import signal
    os.kill(int(pid), signal.SIGKILL)  # type: ignore[arg-type]
    deadline = time.time() + 10
    while time.time() < deadline:
        state = _state(d, "always")
        if state["Running"] and state["Pid"] != pid:
            break
        time.sleep(0.1)
    assert _state(d, "always")["Running"] is True


def test_store_survives_kill9_during_work(own_daemon: DaemonProcess) -> None:
    d = own_daemon
    for i in range(5):
        d.docker("create", "--name", f"c{i}", "bb", "true")
    d.kill9()
    d.start()
    names = d.docker("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    assert sorted(names) == [f"c{i}" for i in range(5)]
    assert d.docker("run", "--rm", "bb", "true").returncode == 0


def test_volumes_and_networks_survive_kill9(own_daemon: DaemonProcess) -> None:
    d = own_daemon
    assert d.docker("network", "create", "keepnet").returncode == 0
    assert d.docker("run", "--rm", "-v", "keepvol:/data", "bb", "sh", "-c",
                    "echo durable > /data/f").returncode == 0
    assert d.docker("run", "-d", "--name", "svc", "--network", "keepnet", "-p", "127.0.0.1::80",
                    "bb", "httpd", "-f", "-p", "80", "-h", "/etc").returncode == 0
    before = json.loads(d.docker("inspect", "svc").stdout)[0]["NetworkSettings"]
    d.kill9()
    d.start()
    out = d.docker("run", "--rm", "-v", "keepvol:/data", "bb", "cat", "/data/f")
    assert out.stdout == b"durable\n"
    after = json.loads(d.docker("inspect", "svc").stdout)[0]["NetworkSettings"]
    assert after["Networks"]["keepnet"]["IPAddress"] == before["Networks"]["keepnet"]["IPAddress"]
    new = d.docker("run", "--rm", "--network", "keepnet", "bb", "wget", "-q", "-O", "-",
                   "http://svc/hostname")
    assert new.returncode == 0 and new.stdout.strip().decode() == \
        json.loads(d.docker("inspect", "svc").stdout)[0]["Id"][:12]
    assert d.docker("rm", "-f", "svc").returncode == 0
    assert d.docker("network", "rm", "keepnet").returncode == 0
