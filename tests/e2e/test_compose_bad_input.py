"""Bad input through ``dockyard compose`` against a real daemon: clear messages that name the
file, service and key, never a traceback; a port conflict leaves a project that ``ps`` shows
and ``down`` removes without a trace (no container, network, bridge or firewall rule)."""
from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, containers, ok


@pytest.fixture
def project(daemon: DaemonProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = "dyb" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "-t", "0", "--remove-orphans")


@pytest.mark.parametrize("text, expected, commands", [
    ("services: [unclosed", "compose.yaml: invalid YAML", ("config", "up")),
    ("services:\n  web:\n    image: bb\n    imgae: x\n", "imgae", ("config", "up")),
    ("services:\n  web:\n    image: bb\n    ports: 80\n", "ports", ("config", "up")),
    ("services:\n  web:\n    image: ${NOPE:?is required}\n", "NOPE", ("config", "up")),
    # like Compose, `config` renders a cycle; acting on it is refused
    ("services:\n  a: {image: bb, depends_on: [b]}\n  b: {image: bb, depends_on: [a]}\n",
     "cycle", ("up",)),
])
def test_config_errors_are_messages_not_tracebacks(daemon: DaemonProcess, project: tuple[str, Path],
                                                   text: str, expected: str,
                                                   commands: tuple[str, ...]) -> None:
    name, workdir = project
    (workdir / "compose.yaml").write_text(text)
    for command in commands:
        args = ("up", "-d") if command == "up" else (command,)
        result = compose(daemon, workdir, name, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    assert containers(APIClient(daemon.host), name) == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_conflict_then_down_leaves_no_trace(daemon: DaemonProcess, bb_image: str,
                                                  project: tuple[str, Path]) -> None:
    name, workdir = project
    port = _free_port()
    service = ('{{image: {image}, command: ["sleep", "600"], stop_grace_period: 0s, '
               'ports: ["127.0.0.1:{port}:80"]}}')
    (workdir / "compose.yaml").write_text(
        "services:\n"
        f"  a: {service.format(image=bb_image, port=port)}\n"
        f"  b: {service.format(image=bb_image, port=port)}\n")
    client = APIClient(daemon.host)
    up = compose(daemon, workdir, name, "up", "-d")
    assert up.returncode == 1, up.stderr
    assert "port is already allocated" in up.stderr, up.stderr
    assert "Traceback" not in up.stderr
    # what did start is visible, not half-hidden
    states = {n: c["State"] for n, c in containers(client, name).items()}
    assert sorted(states.values()) == ["created", "running"], states
    ps = ok(compose(daemon, workdir, name, "ps", "-a")).stdout
    assert all(n in ps for n in states)

    gateway = client.get(f"/networks/{name}_default")["IPAM"]["Config"][0]["Gateway"]
    addrs = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                           text=True).stdout.splitlines()
    bridge = next(line.split()[1] for line in addrs if f" {gateway}/" in line)
    ok(compose(daemon, workdir, name, "down", "-t", "0"))
    assert containers(client, name) == {}
    assert not [n for n in client.get("/networks") if n["Name"] == f"{name}_default"]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert f" {bridge}:" not in links and f" {bridge}@" not in links
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert f"--dport {port} " not in rules and f"--dport {port}\n" not in rules


def test_deploy_limits_apply_and_placement_is_noted(daemon: DaemonProcess, bb_image: str,
                                                    project: tuple[str, Path]) -> None:
    name, workdir = project
    (workdir / "compose.yaml").write_text(
        "services:\n"
        "  app:\n"
        f"    image: {bb_image}\n"
        "    command: [sleep, '600']\n"
        "    stop_grace_period: 0s\n"
        "    deploy:\n"
        "      resources: {limits: {memory: 64M, cpus: '0.5', pids: 50}}\n"
        "      restart_policy: {condition: on-failure, max_attempts: 2}\n"
        "      placement: {constraints: ['node.role == manager']}\n")
    up = ok(compose(daemon, workdir, name, "up", "-d"))
    assert 'service "app": deploy.placement applies to swarm stacks' in up.stderr, up.stderr
    hc = APIClient(daemon.host).get(f"/containers/{name}-app-1/json")["HostConfig"]
    assert hc["Memory"] == 64 * 1024 * 1024 and hc["NanoCpus"] == 500_000_000
    assert hc["PidsLimit"] == 50
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # the limit is really enforced: the memory cgroup of the container says so
    limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes"  # this host: cgroup v1 controllers
    if not Path(limit).exists():
        limit = "/sys/fs/cgroup/memory.max"
    got = daemon.docker("exec", f"{name}-app-1", "cat", limit)
    assert got.stdout.decode().strip() == str(64 * 1024 * 1024), got.stderr
