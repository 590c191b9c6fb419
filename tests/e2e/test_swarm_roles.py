"""Swarm membership operations end to end on three daemons over loopback, through the real
docker CLI and our own: ``swarm update``, ``swarm ca``, ``join-token --rotate``, ``node
promote|demote`` (each promoted node runs an etcd member in the Raft group, each demoted one
stops it and keeps its tasks) and Docker's refusals (last manager, quorum, removing a manager).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.swarmfixtures import daemons_outside_a_swarm
from tests.e2e.test_cli import dy
from tests.e2e.test_swarm import etcd_pids, eventually, free_port, ok, pytestmark  # noqa: F401


@pytest.fixture(scope="module")
def three() -> Iterator[list[DaemonProcess]]:
    with daemons_outside_a_swarm("dytest-roles-", 3) as daemons:
        yield daemons


def fails(d: DaemonProcess, *args: str) -> str:
    out = d.docker(*args, timeout=60)
    assert out.returncode != 0, f"docker {' '.join(args)} succeeded: {out.stdout.decode()}"
    return out.stderr.decode()


def is_worker(d: DaemonProcess) -> bool:
    """this daemon answers as a worker: no cluster state to show"""
    out = d.docker("node", "ls", timeout=60)
    return out.returncode != 0 and b"Worker nodes can't be used" in out.stderr


def init(d: DaemonProcess) -> str:
    ok(d, "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr",
       f"127.0.0.1:{free_port()}")
    return ok(d, "info", "--format", "{{(index .Swarm.RemoteManagers 0).Addr}}").strip()


def join(d: DaemonProcess, token: str, remote: str) -> str:
    return ok(d, "swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1",
              "--listen-addr", f"127.0.0.1:{free_port()}", remote)


def node_id(d: DaemonProcess) -> str:
    return ok(d, "info", "--format", "{{.Swarm.NodeID}}").strip()


def leave_all(daemons: list[DaemonProcess]) -> None:
    for d in daemons:
        d.docker("swarm", "leave", "--force", timeout=60)
    for d in daemons:
        eventually(lambda: not ok(d, "ps", "-aq").split())
        assert not etcd_pids(d)


def test_swarm_update_ca_and_token_rotation(three: list[DaemonProcess]) -> None:
    a, b, c = three
    remote = init(a)
    try:
        assert ok(a, "swarm", "update", "--task-history-limit", "7", "--dispatcher-heartbeat",
                  "7s", "--cert-expiry", "100h") == "Swarm updated.\n"
        spec = "{{json .Swarm.Cluster.Spec.Orchestration}} {{.Swarm.Cluster.Spec.Dispatcher}}"
        assert ok(a, "info", "--format", spec).strip() == \
            '{"TaskHistoryRetentionLimit":7} {7s}'
        text = ok(a, "info")
        for line in ("Task History Retention Limit: 7", "Heartbeat Period: 7 seconds",
                     "Expiry Duration: 4 days"):
            assert line in text, text
        expiry = ok(a, "info", "--format", "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}")
        assert expiry.strip() == "100h0m0s"
        # our CLI changes one value and keeps the others, as docker's
        assert dy(a, "swarm", "update", "--task-history-limit", "3").stdout == b"Swarm updated.\n"
        assert ok(a, "info", "--format", spec).strip() == '{"TaskHistoryRetentionLimit":3} {7s}'
        assert "minimum certificate expiry time is: 1h0m0s" in \
            fails(a, "swarm", "update", "--cert-expiry", "30m")
        assert "autolock is not supported" in fails(a, "swarm", "update", "--autolock")
        assert "No CA information available" in fails(a, "swarm", "ca")
        assert "root CA" in fails(a, "swarm", "ca", "--rotate", "-d")
        ours = dy(a, "swarm", "ca", "--rotate")
        assert ours.returncode == 1 and b"root CA" in ours.stderr

        old = ok(a, "swarm", "join-token", "-q", "worker").strip()
        manager_old = ok(a, "swarm", "join-token", "-q", "manager").strip()
        out = ok(a, "swarm", "join-token", "--rotate", "worker")
        assert out.startswith("Successfully rotated worker join token.\n\n"), out
        new = ok(a, "swarm", "join-token", "-q", "worker").strip()
        assert new != old and new.rsplit("-", 1)[0] == old.rsplit("-", 1)[0]
        assert ok(a, "swarm", "join-token", "-q", "manager").strip() == manager_old
        assert "invalid join token" in fails(b, "swarm", "join", "--token", old,
                                             "--advertise-addr", "127.0.0.1", remote)
        assert "This node joined a swarm as a worker." in join(b, new, remote)
        ours = dy(a, "swarm", "join-token", "--rotate", "manager")
        assert ours.stdout.decode().startswith("Successfully rotated manager join token.\n\n"
                                               "To add a manager to this swarm")
        assert "invalid join token" in fails(c, "swarm", "join", "--token", manager_old,
                                             "--advertise-addr", "127.0.0.1", remote)
        manager_new = ok(a, "swarm", "join-token", "-q", "manager").strip()
        assert manager_new != manager_old
        assert "joined a swarm as a manager" in join(c, manager_new, remote)
    finally:
        leave_all(three)


def test_promote_and_demote(three: list[DaemonProcess]) -> None:
    a, b, c = three
    remote = init(a)
    try:
        token = ok(a, "swarm", "join-token", "-q", "worker").strip()
        for d in (b, c):
            join(d, token, remote)
        a_id, b_id, c_id = (node_id(d) for d in three)
        ok(a, "service", "create", "-d", "--name", "keep", "--replicas", "3", "--stop-grace-period",
           "1s", "bb:latest", "sleep", "1d")
        eventually(lambda: all(len(ok(d, "ps", "-q").split()) == 1 for d in three))
        before = [ok(d, "ps", "-q", "--no-trunc").split() for d in three]
        assert "not a swarm manager" in fails(b, "node", "ls")

        assert ok(a, "node", "promote", b_id) == \
            f"Node {b_id} promoted to a manager in the swarm.\n"
        ours = dy(a, "node", "promote", c_id)
        assert ours.stdout.decode() == f"Node {c_id} promoted to a manager in the swarm.\n"
        assert ok(a, "node", "promote", a_id) == f"Node {a_id} is already a manager.\n"

        def statuses(d: DaemonProcess) -> list[str]:
            out = d.docker("node", "ls", "--format", "{{.ManagerStatus}}", timeout=30)
            return sorted(out.stdout.decode().split()) if out.returncode == 0 else []
        for d in (a, b, c):
            eventually(lambda: statuses(d) == ["Leader", "Reachable", "Reachable"])
        assert etcd_pids(b) and etcd_pids(c)
        assert ok(b, "info", "--format", "{{.Swarm.ControlAvailable}} {{.Swarm.Managers}}") \
            .strip() == "true 3"
        removal = fails(a, "node", "rm", "--force", b_id)
        assert f"node {b_id} is a cluster manager and is a member of the raft cluster. " \
            "It must be demoted to worker before removal" in removal

        # c's etcd member dies: demoting b would leave a alone of a, c: no quorum
        for pid in etcd_pids(c):
            os.kill(pid, 9)
        assert "can't remove member from the raft: this would result in a loss of quorum" in \
            fails(a, "node", "demote", b_id)
        assert ok(a, "node", "demote", c_id) == f"Manager {c_id} demoted in the swarm.\n"
        # c leaves the Raft group itself; until it has, b is still needed for a quorum
        eventually(lambda: is_worker(c))
        demoted = dy(a, "node", "demote", b_id)
        assert demoted.stdout.decode() == f"Manager {b_id} demoted in the swarm.\n", \
            demoted.stderr.decode()
        eventually(lambda: is_worker(b))
        eventually(lambda: statuses(a) == ["Leader"] and not etcd_pids(b) and
                   not etcd_pids(c))
        assert ok(a, "node", "demote", b_id) == f"Node {b_id} is already a worker.\n"
        assert "attempting to demote the last manager of the swarm" in \
            fails(a, "node", "demote", a_id)
        # the workers kept their tasks: the same containers, still running
        assert [ok(d, "ps", "-q", "--no-trunc").split() for d in three] == before
        assert ok(a, "service", "ls", "--format", "{{.Replicas}}").strip() == "3/3"
        assert "Node left the swarm." in ok(c, "swarm", "leave")
        eventually(lambda: "Down" in ok(a, "node", "ls", "--format", "{{.Status}}"))
        assert ok(a, "node", "rm", c_id) == f"{c_id}\n"
    finally:
        leave_all(three)
