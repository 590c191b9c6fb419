"""``dockyard compose`` against a real daemon: up/ps/logs/stop/start/restart/down, the plan
(nothing recreated when nothing changed; only the edited service recreated), scaling, and the
labels read back by the real docker-compose 1.29."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess

REPO = Path(__file__).resolve().parents[2]

COMPOSE = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo {greeting} > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports: ["80"]
    depends_on: [db]
    labels:
      org.example.role: frontend
  db:
    image: {image}
    command: ["sh", "-c", "echo db ready; exec sleep 3600"]
    stop_grace_period: 1s
    volumes: [data:/data]
    networks:
      default:
        aliases: [database]
volumes:
  data: {{}}
"""


def compose(daemon: DaemonProcess, workdir: Path, project: str, *args: str,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(daemon.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "dockyard.cli.main", "compose", "-p", project,
                           "-f", str(workdir / "compose.yaml"), *args], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result


def containers(client: APIClient, project: str) -> dict[str, dict[str, Any]]:
    cs = client.get("/containers/json", {"all": True, "filters": {
        "label": [f"com.docker.compose.project={project}"]}})
    return {c["Names"][0].lstrip("/"): c for c in cs}


def write(workdir: Path, image: str, greeting: str = "hello") -> None:
    (workdir / "compose.yaml").write_text(COMPOSE.format(image=image, greeting=greeting))


@pytest.fixture
def project(daemon: DaemonProcess, tmp_path: Path):  # type: ignore[no-untyped-def]
    name = "dyc" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "-t", "1")


def test_compose_lifecycle(daemon: DaemonProcess, bb_image: str, project: Any) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    write(workdir, bb_image)

    rendered = ok(compose(daemon, workdir, name, "config")).stdout
    assert "database" in rendered and f"name: {name}" in rendered

    up = ok(compose(daemon, workdir, name, "up", "-d"))
    for line in (f"Network {name}_default  Created", f"Volume {name}_data  Created",
                 f"Container {name}-db-1  Started", f"Container {name}-web-1  Started"):
        assert line in up.stderr, up.stderr
    # db is started before web (depends_on)
    assert up.stderr.index(f"{name}-db-1  Started") < up.stderr.index(f"{name}-web-1  Started")
    cs = containers(client, name)
    assert set(cs) == {f"{name}-web-1", f"{name}-db-1"}
    assert all(c["State"] == "running" for c in cs.values())
    web = client.get(f"/containers/{name}-web-1/json")
    labels = web["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == name
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert len(labels["com.docker.compose.config-hash"]) == 64
    assert labels["com.docker.compose.project.working_dir"] == str(workdir)
    assert labels["com.docker.compose.project.config_files"] == str(workdir / "compose.yaml")
    assert labels["org.example.role"] == "frontend"
    net = client.get(f"/networks/{name}_default")
    assert net["Labels"]["com.docker.compose.network"] == "default"
    vol = client.get(f"/volumes/{name}_data")
    assert vol["Labels"]["com.docker.compose.volume"] == "data"

    # service discovery by service name and alias, both ways
    for target in ("db", "database"):
        pong = daemon.docker("exec", f"{name}-web-1", "ping", "-c1", "-W2", target)
        assert pong.returncode == 0, pong.stderr
    got = daemon.docker("exec", f"{name}-db-1", "wget", "-qO-", "http://web/")
    assert got.stdout.decode().strip() == "hello", got.stderr
    # the published port answers on 127.0.0.1
    port = web["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
    assert body.decode().strip() == "hello"

    ps = ok(compose(daemon, workdir, name, "ps")).stdout.splitlines()
    assert ps[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert ps[1].startswith(f"{name}-db-1 ") and ps[2].startswith(f"{name}-web-1 ")
    assert "->80/tcp" in ps[2]

    deadline = time.monotonic() + 10
    # Compose pads the prefix to the longest name + 1: "db-1   | …", "web-1  | …"
    while "db-1   | db ready" not in (logs := compose(daemon, workdir, name, "logs").stdout):
        assert time.monotonic() < deadline, logs
        time.sleep(0.2)

    # nothing changed → nothing recreated
    ids = {n: c["Id"] for n, c in containers(client, name).items()}
    again = ok(compose(daemon, workdir, name, "up", "-d"))
    assert "Recreate" not in again.stderr and "Created" not in again.stderr, again.stderr
    assert {n: c["Id"] for n, c in containers(client, name).items()} == ids

    # edit web's command → only web recreated
    write(workdir, bb_image, greeting="changed")
    edit = ok(compose(daemon, workdir, name, "up", "-d"))
    assert f"Container {name}-web-1  Recreated" in edit.stderr, edit.stderr
    now = {n: c["Id"] for n, c in containers(client, name).items()}
    assert now[f"{name}-db-1"] == ids[f"{name}-db-1"]
    assert now[f"{name}-web-1"] != ids[f"{name}-web-1"]
    # the recreated web's name resolves at once; only its httpd may take a moment to listen
    web_ip = client.get(f"/containers/{name}-web-1/json")[
        "NetworkSettings"]["Networks"][f"{name}_default"]["IPAddress"]
    found = daemon.docker("exec", f"{name}-db-1", "nslookup", "web")
    assert found.returncode == 0 and web_ip in found.stdout.decode(), found.stdout
    for _ in range(20):
        got = daemon.docker("exec", f"{name}-db-1", "wget", "-qO-", "http://web/")
        if got.returncode == 0:
            break
        assert b"bad address" not in got.stderr, got.stderr
        time.sleep(0.1)
    assert got.stdout.decode().strip() == "changed", got.stderr

    # scale (web publishes no fixed host port, so two replicas can coexist)
    ok(compose(daemon, workdir, name, "up", "-d", "--scale", "web=2"))
    cs = containers(client, name)
    assert set(cs) == {f"{name}-web-1", f"{name}-web-2", f"{name}-db-1"}
    assert all(c["State"] == "running" for c in cs.values())
    assert cs[f"{name}-web-1"]["Id"] == now[f"{name}-web-1"]

    # the real docker-compose (1.29, Python) reads our labels
    if shutil.which("docker-compose"):
        env = dict(daemon.env)
        env.pop("PYTHONPATH", None)
        dc = subprocess.run(["docker-compose", "-p", name, "-f", str(workdir / "compose.yaml"),
                             "ps"], env=env, cwd=workdir, capture_output=True, text=True,
                            timeout=60, check=False)
        assert dc.returncode == 0, dc.stderr
        for n in (f"{name}-web-1", f"{name}-web-2", f"{name}-db-1"):
            assert n in dc.stdout, dc.stdout + dc.stderr

    # stop / start / restart
    ok(compose(daemon, workdir, name, "stop", "-t", "1"))
    assert all(c["State"] == "exited" for c in containers(client, name).values())
    ok(compose(daemon, workdir, name, "start"))
    assert all(c["State"] == "running" for c in containers(client, name).values())
    ok(compose(daemon, workdir, name, "restart", "-t", "1", "db"))
    assert containers(client, name)[f"{name}-db-1"]["State"] == "running"

    # down -v: containers, network and volume gone
    down = ok(compose(daemon, workdir, name, "down", "-v", "-t", "1"))
    assert f"Network {name}_default  Removed" in down.stderr, down.stderr
    assert f"Volume {name}_data  Removed" in down.stderr, down.stderr
    assert containers(client, name) == {}
    assert not [n for n in client.get("/networks") if n["Name"] == f"{name}_default"]
    vols = client.get("/volumes").get("Volumes") or []
    assert not [v for v in vols if v["Name"] == f"{name}_data"]
