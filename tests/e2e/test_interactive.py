"""Interactive use through a real pseudo-terminal: ``docker run -it`` and ``docker exec -it``."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time
import uuid

from dockyard.testing.daemon import DOCKER, DaemonProcess


def _spawn(daemon: DaemonProcess, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = pty.openpty()
    proc = subprocess.Popen([DOCKER, *args], stdin=slave, stdout=slave, stderr=slave,
                            env=daemon.env, start_new_session=True)
    os.close(slave)
    return proc, master


def _read_until(master: int, marker: bytes, timeout: float = 15) -> bytes:
    seen = b""
    deadline = time.time() + timeout
    while marker not in seen and time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
    return seen


def _prompt(master: int) -> bytes:
    """Wait for the shell's prompt and its cursor-position query to settle."""
    return _read_until(master, b"# ") + _read_until(master, b"\x00", timeout=0.5)


def _finish(proc: subprocess.Popen[bytes], master: int) -> int:
    try:
        return proc.wait(timeout=15)
    finally:
        os.close(master)


def test_run_it_shell(daemon: DaemonProcess, bb_image: str) -> None:
    proc, master = _spawn(daemon, "run", "-it", "--rm", bb_image, "sh")
    first = _prompt(master)
    assert b"# " in first, first
    os.write(master, b"tty; echo marker-$((6*7))\n")
    out = _read_until(master, b"marker-42")
    assert b"marker-42" in out and b"/dev/pts/0" in out, (out, proc.poll(), daemon.log_text())
    os.write(master, b"exit 5\n")
    assert _finish(proc, master) == 5


def test_exec_it_shell_and_terminal_size(daemon: DaemonProcess, bb_image: str) -> None:
    name = "it" + uuid.uuid4().hex[:8]
    assert daemon.docker("run", "-d", "--name", name, bb_image, "sleep", "60").returncode == 0
    try:
        proc, master = _spawn(daemon, "exec", "-it", name, "sh")
        _prompt(master)
        os.write(master, b"stty size; echo done-$((1+1))\n")
        out = _read_until(master, b"done-2")
        assert b"done-2" in out
        os.write(master, b"exit\n")
        assert _finish(proc, master) == 0
    finally:
        daemon.docker("rm", "-f", name)
