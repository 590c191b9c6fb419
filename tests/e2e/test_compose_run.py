"""``dockyard compose exec`` and ``compose run`` against a real daemon: exit codes, -T/-e/-w,
one-off containers (Compose's labels and names, --rm, -d, ports only with --service-ports),
dependencies started and their ``service_healthy`` condition waited for."""
from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, ok

COMPOSE = """\
services:
  app:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ports: ["127.0.0.1::80"]
    depends_on:
      dep:
        condition: service_healthy
  dep:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
"""

ONEOFF = "com.docker.compose.oneoff"


@pytest.fixture
def project(daemon: DaemonProcess, bb_image: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    name = "dyr" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "compose.yaml").write_text(COMPOSE.format(image=bb_image))
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "-t", "1", "--remove-orphans")


def _containers(client: APIClient, name: str, *labels: str) -> list[dict[str, Any]]:
    return client.get("/containers/json", {"all": True, "filters": {"label": [
        f"com.docker.compose.project={name}", *labels]}})


def test_compose_exec(daemon: DaemonProcess, project: Any) -> None:
    name, workdir = project
    ok(compose(daemon, workdir, name, "up", "-d"))

    failed = compose(daemon, workdir, name, "exec", "app", "sh", "-c", "exit 3")
    assert failed.returncode == 3, failed.stderr
    out = ok(compose(daemon, workdir, name, "exec", "-T", "app", "echo", "hello"))
    assert out.stdout == "hello\n"
    env = ok(compose(daemon, workdir, name, "exec", "-T", "-e", "FOO=bar", "-w", "/tmp", "app",
                     "sh", "-c", "echo $FOO $(pwd)"))
    assert env.stdout == "bar /tmp\n"

    missing = compose(daemon, workdir, name, "exec", "--index", "2", "app", "true")
    assert missing.returncode == 1
    assert 'service "app" is not running container #2' in missing.stderr
    ok(compose(daemon, workdir, name, "stop", "-t", "1", "app"))
    stopped = compose(daemon, workdir, name, "exec", "app", "true")
    assert stopped.returncode == 1 and 'service "app" is not running' in stopped.stderr


def test_compose_run(daemon: DaemonProcess, project: Any) -> None:
    name, workdir = project
    client = APIClient(daemon.host)

    unknown = compose(daemon, workdir, name, "run", "nosuch")
    assert unknown.returncode == 1 and "no such service: nosuch" in unknown.stderr

    # --rm: the dependency is started and healthy first; output, exit code, nothing left over
    run = compose(daemon, workdir, name, "run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "app",
                  "sh", "-c", "echo $FOO $(pwd); exit 4")
    assert run.returncode == 4, run.stderr
    assert run.stdout == "bar /tmp\n"
    assert f"Container {name}-dep-1  Healthy" in run.stderr, run.stderr
    dep = client.get(f"/containers/{name}-dep-1/json")
    assert dep["State"]["Health"]["Status"] == "healthy"
    assert not _containers(client, name, f"{ONEOFF}=True")
    assert not _containers(client, name, "com.docker.compose.service=app")

    # -d: a one-off container named and labelled like Compose's, no ports published
    det = ok(compose(daemon, workdir, name, "run", "-d", "app"))
    cid = det.stdout.strip()
    info = client.get(f"/containers/{cid}/json")
    assert re.fullmatch(f"/{name}-app-run-[0-9a-f]{{12}}", info["Name"]), info["Name"]
    labels = info["Config"]["Labels"]
    assert labels[ONEOFF] == "True" and labels["com.docker.compose.service"] == "app"
    assert re.fullmatch("[0-9a-f]{64}", labels["com.docker.compose.slug"])
    assert info["Name"].endswith(labels["com.docker.compose.slug"][:12])
    assert info["State"]["Running"]
    assert not info["HostConfig"].get("PortBindings")
    ps = ok(compose(daemon, workdir, name, "ps")).stdout
    assert f"{name}-dep-1" in ps and "-run-" not in ps
    assert info["Name"][1:] in ok(compose(daemon, workdir, name, "ps", "-a")).stdout

    # --service-ports publishes the service's ports
    ports = ok(compose(daemon, workdir, name, "run", "-d", "--no-deps", "--service-ports",
                       "app"))
    bindings = client.get(f"/containers/{ports.stdout.strip()}/json")["HostConfig"][
        "PortBindings"]
    assert bindings["80/tcp"][0]["HostIp"] == "127.0.0.1"

    # down removes one-off containers with --remove-orphans (as Compose does)
    down = ok(compose(daemon, workdir, name, "down", "-t", "1", "--remove-orphans"))
    assert f"Network {name}_default  Removed" in down.stderr, down.stderr
    assert not _containers(client, name)
