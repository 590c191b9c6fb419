"""Swarms of real daemons on this host for the e2e tests: one node, or a manager and workers
that each get their own VXLAN data port (and optionally their own mesh publish address)."""
from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_swarm import eventually, free_port, ok


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _start(prefix: str, extra: Sequence[str]) -> DaemonProcess:
    d = DaemonProcess(Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")))
    d.start(extra=list(extra))
    d.import_busybox("bb:latest")
    return d


def _stop(daemons: Sequence[DaemonProcess], show_logs: bool) -> None:
    for d in daemons:
        if show_logs:
            print(f"--- {d.base} ---\n{d.log_text()}")  # shown when a test failed
        if d.proc is not None and d.proc.poll() is None:
            d.docker("swarm", "leave", "--force")
        d.stop()


@contextmanager
def daemons_outside_a_swarm(prefix: str, count: int) -> Iterator[list[DaemonProcess]]:
    """``count`` daemons with busybox, in no swarm yet (each test forms its own)."""
    daemons: list[DaemonProcess] = []
    try:
        for _ in range(count):
            daemons.append(_start(prefix, []))
        yield daemons
    finally:
        _stop(daemons, show_logs=False)


@contextmanager
def one_node_swarm(prefix: str) -> Iterator[DaemonProcess]:
    """A daemon that is the manager of its own swarm."""
    daemons: list[DaemonProcess] = []
    try:
        daemons.append(_start(prefix, []))
        ok(daemons[0], "swarm", "init", "--advertise-addr", "127.0.0.1",
           "--listen-addr", f"127.0.0.1:{free_port()}")
        yield daemons[0]
    finally:
        _stop(daemons, show_logs=False)


@contextmanager
def manager_and_workers(prefix: str, publish_addrs: Sequence[str | None]
                        ) -> Iterator[list[DaemonProcess]]:
    """One daemon per entry (its mesh publish address, or the default): the first inits the
    swarm, the others join it as workers; all Ready when this yields."""
    daemons: list[DaemonProcess] = []
    try:
        for addr in publish_addrs:
            extra = ["--swarm-data-port", str(free_udp_port())]
            daemons.append(_start(prefix, extra + (["--swarm-publish-addr", addr] if addr
                                                   else [])))
        manager, workers = daemons[0], daemons[1:]
        ok(manager, "swarm", "init", "--advertise-addr", "127.0.0.1",
           "--listen-addr", f"127.0.0.1:{free_port()}")
        token = ok(manager, "swarm", "join-token", "-q", "worker").strip()
        remote = ok(manager, "info", "--format",
                    "{{(index .Swarm.RemoteManagers 0).Addr}}").strip()
        for worker in workers:
            ok(worker, "swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1",
               remote)
        eventually(lambda: ok(manager, "node", "ls", "--format", "{{.Status}}").split()
                   == ["Ready"] * len(daemons))
        yield daemons
    finally:
        _stop(daemons, show_logs=True)
