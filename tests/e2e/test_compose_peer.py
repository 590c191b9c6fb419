"""The real docker-compose 1.29 (Python, docker-py 5) driving our daemon, and projects handed
between it and ``dockyard compose`` both ways (the labels are compose's only database).

Config hashes: docker-compose 1.29 hashes its own view of a service (its options dict plus the
image id, links, network mode and networks); Compose v2, and we, hash the normalised service.
They never match, so — as Compose v2 does — ``dockyard compose up`` recreates the containers
1.29 made (once; after that the project is ours and converges). Reproducing 1.29's hash would
mean emulating its config processing; a wrong emulation would keep stale containers, so we
don't. Last, the race both tools hit by starting a level's containers in parallel."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, containers, ok

DOCKER_COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(DOCKER_COMPOSE is None, reason="needs docker-compose 1.29")

COMPOSE = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["127.0.0.1::80"]
    links: [db]
    stop_grace_period: 1s
    networks: [back]
  db:
    image: {image}
    command: ["sh", "-c", "echo db ready; exec sleep 3600"]
    stop_grace_period: 1s
    volumes: [data:/data]
    networks:
      back:
        aliases: [database]
networks:
  back: {{}}
volumes:
  data: {{}}
"""


def legacy(daemon: DaemonProcess, workdir: Path, project: str,
           *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """docker-compose 1.29 as users run it: no PYTHONPATH, no docker CLI for exec/run."""
    assert DOCKER_COMPOSE is not None
    env = dict(daemon.env, COMPOSE_INTERACTIVE_NO_CLI="1", **extra)
    env.pop("PYTHONPATH", None)
    return subprocess.run([DOCKER_COMPOSE, "-p", project, "-f", str(workdir / "compose.yaml"),
                           *args], env=env, cwd=workdir, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


def leftovers(client: APIClient, project: str) -> list[str]:
    nets = [n["Name"] for n in client.get("/networks") if n["Name"].startswith(project)]
    vols = [v["Name"] for v in client.get("/volumes").get("Volumes") or []
            if v["Name"].startswith(project)]
    return [*containers(client, project), *nets, *vols]


@pytest.fixture
def project(daemon: DaemonProcess, bb_image: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    name = "dcp" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "compose.yaml").write_text(COMPOSE.format(image=bb_image))
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "-t", "1")


def test_docker_compose_129_against_our_daemon(daemon: DaemonProcess, project: Any) -> None:
    name, workdir = project
    client = APIClient(daemon.host)

    up = ok(legacy(daemon, workdir, name, "up", "-d"))
    assert f"Creating {name}_db_1 ... done" in up.stderr, up.stderr
    ps = ok(legacy(daemon, workdir, name, "ps")).stdout
    assert f"{name}_web_1" in ps and f"{name}_db_1" in ps and "->80/tcp" in ps, ps
    deadline = time.monotonic() + 10
    while "db ready" not in (logs := legacy(daemon, workdir, name, "logs", "db").stdout):
        assert time.monotonic() < deadline, logs
        time.sleep(0.2)
    for target in ("db", "database", f"{name}_db_1"):  # link, alias, container name
        pong = daemon.docker("exec", f"{name}_web_1", "ping", "-c1", "-W2", target)
        assert pong.returncode == 0, (target, pong.stderr)
    web = client.get(f"/containers/{name}_web_1/json")
    port = web["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read() == b"hello\n"
    # 1.29 disconnects and reconnects each new container: the network mode survives that
    db = client.get(f"/containers/{name}_db_1/json")
    assert db["HostConfig"]["NetworkMode"] == f"{name}_back"
    assert "database" in db["NetworkSettings"]["Networks"][f"{name}_back"]["Aliases"]
    # a second `up` finds everything up to date (created containers list their networks)
    again = ok(legacy(daemon, workdir, name, "up", "-d"))
    assert "is up-to-date" in again.stderr and "Recreating" not in again.stderr, again.stderr
    # 1.29 recreates through image inspect's ContainerConfig: gone since API 1.45 (as in
    # Docker), so it works when pinned to 1.44
    ok(legacy(daemon, workdir, name, "up", "-d", "--force-recreate", "--no-deps", "db",
              COMPOSE_API_VERSION="1.44"))
    assert client.get(f"/containers/{name}_db_1/json")["Id"] != db["Id"]

    # 1.29's project, seen by us: same labels; different config hash → recreated, as v2 does
    listed = ok(compose(daemon, workdir, name, "ps")).stdout
    assert f"{name}_web_1" in listed and f"{name}_db_1" in listed, listed
    ids = {n: c["Id"] for n, c in containers(client, name).items()}
    ok(compose(daemon, workdir, name, "up", "-d"))
    after = {c["Labels"]["com.docker.compose.service"]: c
             for c in containers(client, name).values()}
    assert set(after) == {"web", "db"} and all(c["Id"] not in ids.values() for c in after.values())
    assert all(c["State"] == "running" for c in after.values())
    settled = {c["Id"] for c in after.values()}
    ok(compose(daemon, workdir, name, "up", "-d"))  # now ours: nothing recreated
    assert {c["Id"] for c in containers(client, name).values()} == settled

    # ... and 1.29 takes our project down
    down = ok(legacy(daemon, workdir, name, "down", "-v", "-t", "1"))
    assert f"Removing network {name}_back" in down.stderr, down.stderr
    assert leftovers(client, name) == []

    # 1.29 brings it up again and takes it down itself: nothing left
    ok(legacy(daemon, workdir, name, "up", "-d"))
    assert len(containers(client, name)) == 2
    ok(legacy(daemon, workdir, name, "down", "-v", "-t", "1"))
    assert leftovers(client, name) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="binds port 53")
def test_parallel_starts_on_a_new_network_share_one_dns_listener() -> None:
    """Compose (both) start a level's containers in parallel; each start serves the embedded
    DNS on the network's gateway: only the first may bind it, the others must reuse it."""
    from types import SimpleNamespace

    from dockyard.engine.networks import Networks

    nets = Networks(None, None, None, offline=True)  # type: ignore[arg-type]
    gateway = f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.1"
    net = SimpleNamespace(id="n" + uuid.uuid4().hex, name="n", gateway=gateway,
                          subnet=f"{gateway}/24")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            nets._serve_dns(net)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and list(nets.dns.addresses()) == [net.id]
    finally:
        nets.dns.close()
