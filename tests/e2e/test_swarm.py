"""Swarm mode end to end: two daemons on this host form a swarm over loopback (a manager with
its etcd member, and a worker), driven by the real docker CLI and docker-py."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess
from dockyard.testing.etcd import free_port as _free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crun") or not shutil.which("etcd"),
    reason="needs root, crun and etcd")


def free_port() -> int:
    """A swarm listen port: it and the next one (the etcd peer port) are free."""
    for _ in range(50):
        port = _free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports")


def ok(d: DaemonProcess, *args: str) -> str:
    out = d.docker(*args, timeout=90)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout}s: {check.__doc__ or check}")


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[DaemonProcess, DaemonProcess, int]]:
    daemons = []
    try:
        for _ in range(2):
            d = DaemonProcess(Path(tempfile.mkdtemp(prefix="dytest-swarm-", dir="/tmp")))
            daemons.append(d)
            d.start()
            d.import_busybox("bb:latest")
        yield daemons[0], daemons[1], free_port()
    finally:
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.docker("swarm", "leave", "--force")
            d.stop()


def etcd_pids(d: DaemonProcess) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if argv and argv[0].endswith(b"etcd") and any(str(d.base).encode() in a for a in argv):
            found.append(int(proc.name))
    return found


def test_swarm_lifecycle_with_the_docker_cli(pair: tuple[DaemonProcess, DaemonProcess, int]
                                             ) -> None:
    manager, worker, port = pair
    assert ok(manager, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"
    assert "not a swarm manager" in manager.docker("node", "ls").stderr.decode()
    out = ok(manager, "swarm", "init", "--listen-addr", f"127.0.0.1:{port}",
             "--advertise-addr", "127.0.0.1")
    assert "is now a manager" in out and "docker swarm join --token SWMTKN-1-" in out
    assert etcd_pids(manager)
    again = manager.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    assert again.returncode != 0 and "already part of a swarm" in again.stderr.decode()
    token = ok(manager, "swarm", "join-token", "-q", "worker").strip()
    bad = worker.docker("swarm", "join", "--token", token[:-3] + "xyz", f"127.0.0.1:{port}")
    assert bad.returncode != 0 and "invalid join token" in bad.stderr.decode()
    joined = ok(worker, "swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1",
                f"127.0.0.1:{port}")
    assert "This node joined a swarm as a worker." in joined
    assert ok(worker, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "active"

    def two_ready() -> bool:
        rows = ok(manager, "node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}")
        return sorted(rows.split("\n")[:-1]) == ["Ready ", "Ready Leader"]
    eventually(two_ready)

    ok(manager, "service", "create", "-d", "--name", "web", "--replicas", "3",
       "--stop-grace-period", "1s", "bb:latest", "sleep", "1d")

    def three_running() -> bool:
        return ok(manager, "service", "ls", "--format", "{{.Name}} {{.Replicas}}") \
            .strip() == "web 3/3"
    eventually(three_running)
    tasks = ok(manager, "service", "ps", "--format", "{{.Name}} {{.CurrentState}}", "web")
    assert sorted(line.split()[0] for line in tasks.splitlines()) == ["web.1", "web.2", "web.3"]
    on_worker = ok(worker, "ps", "--format", "{{.Names}}").split()
    on_manager = ok(manager, "ps", "--format", "{{.Names}}").split()
    assert sorted(len(x) for x in (on_worker, on_manager)) == [1, 2]
    assert all(name.startswith("web.") for name in on_worker + on_manager)

    worker_id = ok(worker, "info", "--format", "{{.Swarm.NodeID}}").strip()
    ok(manager, "node", "update", "--availability", "drain", worker_id)

    def drained() -> bool:
        return not ok(worker, "ps", "-q").split() and \
            len(ok(manager, "ps", "-q").split()) == 3 and three_running()
    eventually(drained)
    ok(manager, "service", "scale", "-d", "web=1")

    def one_running() -> bool:
        return ok(manager, "service", "ls", "--format", "{{.Replicas}}").strip() == "1/1" and \
            len(ok(manager, "ps", "-q").split()) + len(ok(worker, "ps", "-q").split()) == 1
    eventually(one_running)

    ok(manager, "service", "rm", "web")

    def all_gone() -> bool:
        return not ok(manager, "ps", "-aq").split() and not ok(worker, "ps", "-aq").split()
    eventually(all_gone)
    assert "no such service: web" in manager.docker("service", "inspect", "web").stderr.decode()

    assert "Node left the swarm." in ok(worker, "swarm", "leave")
    refused = manager.docker("swarm", "leave")
    assert refused.returncode != 0 and "--force" in refused.stderr.decode()
    assert "Node left the swarm." in ok(manager, "swarm", "leave", "--force")
    assert not etcd_pids(manager)
    assert ok(manager, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "inactive"


def test_services_through_docker_py(pair: tuple[DaemonProcess, DaemonProcess, int]) -> None:
    import docker
    from docker.types import ServiceMode
    manager, _, _ = pair
    client = docker.DockerClient(base_url=manager.host, timeout=60)
    try:
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr=f"127.0.0.1:{free_port()}")
        assert client.info()["Swarm"]["LocalNodeState"] == "active"
        service = client.services.create("bb:latest", ["sh", "-c", "exit 3"], name="flaky",
                                         mode=ServiceMode("replicated", replicas=1),
                                         restart_policy=docker.types.RestartPolicy(
                                             condition="on-failure", delay=0, max_attempts=2))

        def two_failed() -> bool:
            """the task failed twice (max_attempts=2), then stays failed"""
            states = [t["Status"]["State"] for t in service.tasks()]
            return states.count("failed") == 2
        eventually(two_failed)
        failed = service.tasks()[0]
        assert failed["Status"]["ContainerStatus"]["ExitCode"] == 3
        assert "non-zero exit (3)" in failed["Status"]["Err"]
        assert [s.name for s in client.services.list()] == ["flaky"]
        service.remove()
        eventually(lambda: not client.containers.list(all=True))
        assert client.swarm.leave(force=True)
    finally:
        client.close()


def test_our_cli_drives_the_swarm_like_docker(pair: tuple[DaemonProcess, DaemonProcess, int]
                                              ) -> None:
    from tests.e2e.test_cli import dy
    manager, _, _ = pair
    out = dy(manager, "swarm", "init", "--advertise-addr", "127.0.0.1",
             "--listen-addr", f"127.0.0.1:{free_port()}")
    assert out.returncode == 0, out.stderr.decode()
    assert "Swarm initialized: current node (" in out.stdout.decode()
    try:
        created = dy(manager, "service", "create", "-d", "--name", "api", "--replicas", "2",
                     "--stop-grace-period", "1s", "--limit-memory", "64m", "bb:latest",
                     "sleep", "1d")
        assert created.returncode == 0, created.stderr.decode()

        def converged() -> bool:
            return ok(manager, "service", "ls", "--format", "{{.Replicas}}").strip() == "2/2"
        eventually(converged)
        for args in (["node", "ls"], ["service", "ls"], ["service", "ps", "api"],
                     ["node", "ls", "-q"], ["service", "ls", "--format", "{{.Name}} {{.Mode}}"],
                     ["swarm", "join-token", "worker"]):
            ours = dy(manager, *args)
            assert ours.returncode == 0, ours.stderr.decode()
            assert ours.stdout.decode() == ok(manager, *args), f"dockyard {' '.join(args)}"
        spec = manager.docker("service", "inspect", "--format",
                              "{{json .Spec.TaskTemplate.Resources.Limits}}", "api")
        assert spec.stdout.decode().strip() == '{"MemoryBytes":67108864}'
        memory = ok(manager, "inspect", "--format", "{{.HostConfig.Memory}}",
                    ok(manager, "ps", "-q").split()[0])
        assert memory.strip() == "67108864"
        assert dy(manager, "service", "rm", "api").stdout.decode() == "api\n"
        eventually(lambda: not ok(manager, "ps", "-aq").split())
    finally:
        left = dy(manager, "swarm", "leave", "--force")
        assert left.stdout.decode() == "Node left the swarm.\n", left.stderr.decode()


def test_bad_service_requests_on_a_manager(pair: tuple[DaemonProcess, DaemonProcess, int]
                                           ) -> None:
    import json
    from urllib.parse import quote

    from tests.api.test_bad_input import call, message
    manager, _, _ = pair
    ok(manager, "swarm", "init", "--advertise-addr", "127.0.0.1",
       "--listen-addr", f"127.0.0.1:{free_port()}")
    try:
        spec = {"Name": "good", "TaskTemplate": {"ContainerSpec": {"Image": "bb:latest",
                                                                   "Args": ["sleep", "1d"]}}}
        cases = [
            ("POST", "/v1.50/services/create",
             {"Name": "x", "TaskTemplate": {"ContainerSpec": {}}}, 400,
             "image reference must be provided"),
            ("POST", "/v1.50/services/create", {**spec, "Name": "bad name!"}, 400,
             "valid as a DNS name"),
            ("GET", "/v1.50/services?filters=" + quote(json.dumps({"colour": ["red"]})), None, 400,
             "invalid filter 'colour'"),
            ("GET", "/v1.50/services/nope", None, 404, "service nope not found"),
            ("GET", "/v1.50/tasks/nope", None, 404, "task nope not found"),
            ("GET", "/v1.50/nodes/nope", None, 404, "node nope not found"),
        ]
        for method, url, body, status, text in cases:
            got, data = call(manager, method, url, json.dumps(body).encode() if body else None)
            assert (got, text in message(data)) == (status, True), (url, data)
        got, data = call(manager, "POST", "/v1.50/services/create", json.dumps(spec).encode())
        assert got == 201
        got, data = call(manager, "POST", "/v1.50/services/create", json.dumps(spec).encode())
        assert got == 409 and "already exists" in message(data)
        got, data = call(manager, "POST", "/v1.50/services/good/update?version=1",
                         json.dumps(spec).encode())
        assert got == 400 and "update out of sequence" in message(data)
        got, data = call(manager, "POST", "/v1.50/services/good/update",
                         json.dumps(spec).encode())
        assert got == 400
        assert ok(manager, "service", "rm", "good") == "good\n"
    finally:
        ok(manager, "swarm", "leave", "--force")
    eventually(lambda: not ok(manager, "ps", "-aq").split())


def test_a_killed_manager_resumes_its_swarm(pair: tuple[DaemonProcess, DaemonProcess, int]
                                            ) -> None:
    manager, _, _ = pair
    ok(manager, "swarm", "init", "--advertise-addr", "127.0.0.1",
       "--listen-addr", f"127.0.0.1:{free_port()}")
    try:
        ok(manager, "service", "create", "-d", "--name", "keep", "--replicas", "2",
           "--stop-grace-period", "1s", "bb:latest", "sleep", "1d")
        eventually(lambda: ok(manager, "service", "ls", "--format", "{{.Replicas}}")
                   .strip() == "2/2")
        before = sorted(ok(manager, "ps", "-q", "--no-trunc").split())
        manager.kill9()
        manager.start()
        assert ok(manager, "info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "active"
        assert len(etcd_pids(manager)) == 1
        eventually(lambda: ok(manager, "service", "ls", "--format", "{{.Replicas}}")
                   .strip() == "2/2")
        # the same containers, adopted: nothing was restarted or duplicated
        assert sorted(ok(manager, "ps", "-q", "--no-trunc").split()) == before
        ok(manager, "service", "update", "-d", "--env-add", "V=2", "keep")

        def updated() -> bool:
            rows = ok(manager, "service", "ps", "--format", "{{.DesiredState}} {{.CurrentState}}",
                      "keep").splitlines()
            running = [r for r in rows if r.startswith("Running Running")]
            return len(running) == 2 and len(rows) == 4
        eventually(updated)
        env = ok(manager, "inspect", "--format", "{{json .Config.Env}}",
                 ok(manager, "ps", "-q").split()[0])
        assert '"V=2"' in env
    finally:
        ok(manager, "swarm", "leave", "--force")
    eventually(lambda: not ok(manager, "ps", "-aq").split())
    assert not etcd_pids(manager)


def test_host_mode_published_port(pair: tuple[DaemonProcess, DaemonProcess, int]) -> None:
    import urllib.request
    manager, _, _ = pair
    ok(manager, "swarm", "init", "--advertise-addr", "127.0.0.1",
       "--listen-addr", f"127.0.0.1:{free_port()}")
    port = free_port()
    try:
        ok(manager, "service", "create", "-d", "--name", "www", "--stop-grace-period", "1s",
           "--publish", f"published={port},target=80,mode=host", "bb:latest",
           "sh", "-c", "mkdir -p /w && echo swarm-www > /w/index.html && httpd -f -p 80 -h /w")

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return bool(r.read() == b"swarm-www\n")
            except OSError:
                return False
        eventually(answers)
        ok(manager, "service", "rm", "www")
    finally:
        ok(manager, "swarm", "leave", "--force")
    eventually(lambda: not ok(manager, "ps", "-aq").split())


@pytest.fixture
def trio() -> Iterator[list[DaemonProcess]]:
    from tests.e2e.swarmfixtures import daemons_outside_a_swarm  # it imports this module
    with daemons_outside_a_swarm("dytest-swarm-", 3) as daemons:
        yield daemons


def test_three_managers_survive_losing_the_leader(trio: list[DaemonProcess]) -> None:
    a, b, c = trio
    ok(a, "swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr",
       f"127.0.0.1:{free_port()}")
    token = ok(a, "swarm", "join-token", "-q", "manager").strip()
    remote = ok(a, "info", "--format", "{{(index .Swarm.RemoteManagers 0).Addr}}").strip()
    for d in (b, c):
        out = ok(d, "swarm", "join", "--token", token, "--advertise-addr", "127.0.0.1",
                 "--listen-addr", f"127.0.0.1:{free_port()}", remote)
        assert "This node joined a swarm as a manager." in out

    def statuses(d: DaemonProcess) -> list[str]:
        out = d.docker("node", "ls", "--format", "{{.ManagerStatus}}", timeout=30)
        return sorted(out.stdout.decode().split()) if out.returncode == 0 else []
    eventually(lambda: statuses(a) == ["Leader", "Reachable", "Reachable"])
    ok(b, "service", "create", "-d", "--name", "web", "--replicas", "3",
       "--stop-grace-period", "1s", "bb:latest", "sleep", "1d")
    eventually(lambda: ok(c, "service", "ls", "--format", "{{.Replicas}}").strip() == "3/3")
    assert ok(a, "ps", "-q").split(), "the leader runs tasks too"

    # The leader's machine dies: its daemon and its etcd member.
    for pid in etcd_pids(a):
        os.kill(pid, 9)
    a.kill9()

    def recovered() -> bool:
        if statuses(b) != ["Leader", "Reachable", "Unreachable"]:
            return False
        rows = ok(b, "service", "ps", "--filter", "desired-state=running", "--format",
                  "{{.Node}} {{.CurrentState}}", "web").splitlines()
        return len(rows) == 3 and all("Running" in r for r in rows) and \
            len(ok(b, "ps", "-q").split()) + len(ok(c, "ps", "-q").split()) == 3
    eventually(recovered, timeout=60)
    for d in (b, c):
        assert "Node left the swarm." in ok(d, "swarm", "leave", "--force")
