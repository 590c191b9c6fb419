"""``dockyard compose top/kill/pause/unpause/port/images/ls/wait/version/push`` against a real
daemon, and ``down -v`` keeping named volumes that hold data unless ``--force``."""
from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, ok
from tests.e2e.test_registry_roundtrip import our_registry  # noqa: F401 (fixture)

OPS = """\
services:
  web:
    image: {image}
    command: ["sleep", "3600"]
    ports: ["8080"]
    stop_grace_period: 1s
  job:
    image: {image}
    command: ["sh", "-c", "sleep 1; exit 3"]
"""

DATA = """\
services:
  db:
    image: {image}
    command: ["sh", "-c", "echo precious > /data/f; exec sleep 3600"]
    stop_grace_period: 1s
    volumes: [data:/data, scratch:/scratch]
volumes:
  data: {{}}
  scratch: {{}}
"""

PUSH = """\
services:
  app:
    build: .
    image: {ref}
  other:
    image: {image}
"""


@pytest.fixture
def project(daemon: DaemonProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = "dyo" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "--force", "-t", "1")


def state(client: APIClient, container: str) -> str:
    return str(client.get(f"/containers/{container}/json")["State"]["Status"])


def test_ops_on_a_running_project(daemon: DaemonProcess, bb_image: str,
                                  project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    (workdir / "compose.yaml").write_text(OPS.format(image=bb_image))
    ok(compose(daemon, workdir, name, "up", "-d", "web"))
    web = f"{name}-web-1"

    top = ok(compose(daemon, workdir, name, "top")).stdout.splitlines()
    assert re.match(r"SERVICE\s+#\s+UID\s+PID\s+PPID.*\s+CMD$", top[0]), top
    assert re.match(r"web\s+1\s+.*sleep 3600$", top[1]), top

    published = client.get(f"/containers/{web}/json")["NetworkSettings"]["Ports"]["8080/tcp"]
    port = ok(compose(daemon, workdir, name, "port", "web", "8080")).stdout
    assert port == f"0.0.0.0:{published[0]['HostPort']}\n"
    missing = compose(daemon, workdir, name, "port", "web", "9999")
    assert missing.returncode == 1 and f"no port 9999/tcp for container {web}" in missing.stderr

    images = ok(compose(daemon, workdir, name, "images")).stdout.splitlines()
    assert images[0].split() == ["CONTAINER", "REPOSITORY", "TAG", "PLATFORM", "IMAGE", "ID",
                                 "SIZE", "CREATED"]
    assert images[1].split()[:3] == [web, "bb", "latest"], images
    image_id = client.get(f"/images/{bb_image}/json")["Id"]
    assert ok(compose(daemon, workdir, name, "images", "-q")).stdout == \
        image_id.split(":")[1] + "\n"
    rows = json.loads(ok(compose(daemon, workdir, name, "images", "--format", "json")).stdout)
    assert rows[0]["ContainerName"] == web and rows[0]["ID"] == image_id

    listed = ok(compose(daemon, workdir, name, "ls")).stdout
    assert re.search(rf"^{name}\s+running\(1\)\s+{re.escape(str(workdir / 'compose.yaml'))}$",
                     listed, re.M), listed
    assert name in ok(compose(daemon, workdir, name, "ls", "-q")).stdout.split()

    paused = ok(compose(daemon, workdir, name, "pause"))
    assert f"Container {web}  Paused" in paused.stderr and state(client, web) == "paused"
    assert "paused(1)" in ok(compose(daemon, workdir, name, "ls")).stdout
    unpaused = ok(compose(daemon, workdir, name, "unpause"))
    assert f"Container {web}  Unpaused" in unpaused.stderr and state(client, web) == "running"

    killed = ok(compose(daemon, workdir, name, "kill", "web"))  # SIGKILL: PID 1
    assert f"Container {web}  Killed" in killed.stderr, killed.stderr
    deadline = time.monotonic() + 10
    while state(client, web) != "exited" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state(client, web) == "exited"
    assert "No container to kill" in ok(compose(daemon, workdir, name, "kill")).stderr
    assert name not in ok(compose(daemon, workdir, name, "ls")).stdout
    assert re.search(rf"^{name}\s+exited\(1\)", ok(compose(daemon, workdir, name, "ls", "-a"))
                     .stdout, re.M)

    ok(compose(daemon, workdir, name, "up", "-d", "job"))
    waited = compose(daemon, workdir, name, "wait", "job")
    assert waited.returncode == 3, waited.stderr
    assert "exited with status code 3" in waited.stdout

    version = ok(compose(daemon, workdir, name, "version")).stdout
    assert re.match(r"^Docker Compose version v2\.\d+\.\d+-dockyard\n$", version)


def volume_size(client: APIClient, volume: str) -> int:
    for v in client.get("/system/df").get("Volumes") or []:
        if v["Name"] == volume:
            return int(v["UsageData"]["Size"])
    return -1


def test_down_v_keeps_volumes_holding_data_unless_forced(
        daemon: DaemonProcess, bb_image: str, project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    (workdir / "compose.yaml").write_text(DATA.format(image=bb_image))
    ok(compose(daemon, workdir, name, "up", "-d"))
    deadline = time.monotonic() + 10
    while volume_size(client, f"{name}_data") <= 0 and time.monotonic() < deadline:
        time.sleep(0.1)

    down = compose(daemon, workdir, name, "down", "-v", "-t", "1")
    assert down.returncode == 1, down.stderr
    assert f"Volume {name}_data  Kept" in down.stderr, down.stderr
    assert f"volume {name}_data holds 9B; not removed" in down.stderr
    assert "--force" in down.stderr
    assert f"Volume {name}_scratch  Removed" in down.stderr
    assert f"Network {name}_default  Removed" in down.stderr
    vols = {v["Name"] for v in client.get("/volumes").get("Volumes") or []}
    assert f"{name}_data" in vols and f"{name}_scratch" not in vols
    assert not client.get("/containers/json", {"all": True, "filters": {
        "label": [f"com.docker.compose.project={name}"]}})

    forced = ok(compose(daemon, workdir, name, "down", "-v", "--force"))
    assert f"Volume {name}_data  Removed" in forced.stderr
    vols = {v["Name"] for v in client.get("/volumes").get("Volumes") or []}
    assert f"{name}_data" not in vols


def test_push_built_service_images(daemon: DaemonProcess, bb_image: str,
                                   project: tuple[str, Path],
                                   request: pytest.FixtureRequest) -> None:
    name, workdir = project
    registry = int(request.getfixturevalue("our_registry"))
    ref = f"127.0.0.1:{registry}/{name}/app:1"
    (workdir / "compose.yaml").write_text(PUSH.format(ref=ref, image=bb_image))
    (workdir / "Dockerfile").write_text(f"FROM {bb_image}\nLABEL org.example.pushed=yes\n")
    try:
        ok(compose(daemon, workdir, name, "build"))
        pushed = ok(compose(daemon, workdir, name, "push"))
    finally:
        daemon.docker("rmi", ref)
    assert "Service other  Skipped" in pushed.stderr, pushed.stderr
    assert f"Image {ref}  Pushed" in pushed.stderr, pushed.stderr
    req = urllib.request.Request(
        f"http://127.0.0.1:{registry}/v2/{name}/app/manifests/1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                           "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        manifest: dict[str, Any] = json.loads(resp.read())
    assert manifest["layers"]
