"""The seed's compose file, in full shape, through ``dockyard compose`` and a real daemon: a web
service beside a mysql-like database (busybox stand-ins), written in the seed's version 2
format, with ``container_name``, a link alias, published ports, named volumes and a bind mount,
``volumes_from``, a user network and an ``external: true`` network made beforehand. Then
``ps``, ``logs``, docker-compose 1.29 reading (``ps``) and taking down (``down``) the same
project, and ``down -v`` leaving nothing but the external network."""
from __future__ import annotations

import re
import shutil
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, containers, ok
from tests.e2e.test_compose_peer import legacy, leftovers
from tests.e2e.test_registry_roundtrip import free_port

SEED = """\
version: "2"
networks:
  balancer: {{}}
  {ext}:
    external: true
services:
  web:
    container_name: {name}-site
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && cp /site/index.html /www/ && echo web up && exec httpd -f -p 8000 -h /www"]
    ports:
      - "127.0.0.1:{web_port}:8000"
    links:
      - basedatos:miAliasVisibleParaWeb
    volumes:
      - "{site}:/site:ro"
      - uploads:/uploads
    volumes_from:
      - basedatos:ro
    networks:
      - balancer
      - {ext}
    depends_on: [basedatos]
    stop_grace_period: 1s
  basedatos:
    image: {image}
    command: ["sh", "-c", "echo mysql ready > /var/lib/mysql/status && echo db ready && exec httpd -f -p 3306 -h /var/lib/mysql"]
    ports:
      - "127.0.0.1:{db_port}:3306"
    volumes:
      - dbdata:/var/lib/mysql
    networks:
      - balancer
    stop_grace_period: 1s
volumes:
  dbdata: {{}}
  uploads: {{}}
"""


@pytest.fixture
def seed(daemon: DaemonProcess, bb_image: str,
         tmp_path: Path) -> Iterator[tuple[str, Path, str, int, int]]:
    name = "dys" + uuid.uuid4().hex[:6]
    ext = f"{name}ext"
    workdir = tmp_path / "app"
    site = tmp_path / "site"
    workdir.mkdir()
    site.mkdir()
    (site / "index.html").write_text(f"hola desde {name}\n")
    web_port, db_port = free_port(), free_port()
    (workdir / "compose.yaml").write_text(SEED.format(
        name=name, ext=ext, image=bb_image, site=site, web_port=web_port, db_port=db_port))
    made = daemon.docker("network", "create", ext)
    assert made.returncode == 0, made.stderr
    try:
        yield name, workdir, ext, web_port, db_port
    finally:
        compose(daemon, workdir, name, "down", "-v", "--force", "-t", "1")
        daemon.docker("network", "rm", ext)


def wait_for(check: Any, what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def fetch(port: int, path: str) -> str:
    def get() -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return ""
    return str(wait_for(get, f"127.0.0.1:{port}{path}"))


def test_seed_shape(daemon: DaemonProcess, bb_image: str, seed: Any) -> None:
    name, workdir, ext, web_port, db_port = seed
    client = APIClient(daemon.host)
    site, db = f"{name}-site", f"{name}-basedatos-1"

    up = ok(compose(daemon, workdir, name, "up", "-d"))
    assert "version` is obsolete" in up.stderr, up.stderr  # Compose v2's warning
    for line in (f"Network {name}_balancer  Created", f"Volume {name}_dbdata  Created",
                 f"Volume {name}_uploads  Created", f"Container {site}  Started",
                 f"Container {db}  Started"):
        assert line in up.stderr, up.stderr
    assert f"Network {ext}  Created" not in up.stderr, up.stderr
    assert set(containers(client, name)) == {site, db}

    # published ports, on 127.0.0.1; the page comes from the bind mount
    assert fetch(web_port, "/index.html") == f"hola desde {name}\n"
    assert fetch(db_port, "/status") == "mysql ready\n"
    # web reaches the database by the link's alias (and by its service name) on the network
    for host in ("miAliasVisibleParaWeb", "basedatos"):
        got = daemon.docker("exec", site, "wget", "-qO-", f"http://{host}:3306/status")
        assert got.returncode == 0 and got.stdout == b"mysql ready\n", (host, got.stderr)
    # volumes_from: the database's volume, read-only, in web
    assert daemon.docker("exec", site, "cat", "/var/lib/mysql/status").stdout == b"mysql ready\n"
    ro = daemon.docker("exec", site, "touch", "/var/lib/mysql/x")
    assert ro.returncode != 0 and b"Read-only file system" in ro.stderr, ro.stderr
    # the named volume of web is writable and is the project's volume
    assert daemon.docker("exec", site, "sh", "-c", "echo up > /uploads/f").returncode == 0
    info = client.get(f"/containers/{site}/json")
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/uploads"]["Name"] == f"{name}_uploads"
    assert mounts["/site"]["Type"] == "bind" and mounts["/site"]["RW"] is False
    assert mounts["/var/lib/mysql"]["Name"] == f"{name}_dbdata"
    # both networks: the project's and the external one, where others reach web by name
    assert set(info["NetworkSettings"]["Networks"]) == {f"{name}_balancer", ext}
    peer = daemon.docker("run", "--rm", "--network", ext, bb_image, "wget", "-qO-",
                         f"http://{site}:8000/index.html", timeout=60)
    assert peer.stdout.decode() == f"hola desde {name}\n", peer.stderr

    ps = ok(compose(daemon, workdir, name, "ps")).stdout.splitlines()
    assert ps[0].split()[:2] == ["NAME", "IMAGE"]
    rows = {line.split()[0]: line for line in ps[1:]}
    assert set(rows) == {site, db}, ps
    assert f"127.0.0.1:{web_port}->8000/tcp" in rows[site], ps
    assert f"127.0.0.1:{db_port}->3306/tcp" in rows[db], ps
    def both_logged() -> str:
        out = compose(daemon, workdir, name, "logs").stdout
        return out if "db ready" in out and "web up" in out else ""
    logs = wait_for(both_logged, "logs")
    # Compose v2's prefixes: <service>-<n> under the default name, else the container_name
    lines = [re.split(r"\s+\|\s", ln, maxsplit=1) for ln in logs.splitlines()]
    assert ["basedatos-1", "db ready"] in lines and [site, "web up"] in lines, logs

    if shutil.which("docker-compose"):  # Debian's docker-compose 1.29 reads our project
        listed = ok(legacy(daemon, workdir, name, "ps"))
        assert site in listed.stdout and db in listed.stdout, listed.stdout + listed.stderr
        assert f"127.0.0.1:{web_port}->8000/tcp" in listed.stdout, listed.stdout

    # down -v: the volumes holding data are kept unless --force (beyond Compose); then gone
    down = compose(daemon, workdir, name, "down", "-v", "-t", "1")
    assert down.returncode == 1, down.stderr  # says what it kept
    assert f"Network {name}_balancer  Removed" in down.stderr, down.stderr
    assert f"volume {name}_dbdata holds" in down.stderr, down.stderr
    assert containers(client, name) == {}
    forced = ok(compose(daemon, workdir, name, "down", "-v", "--force", "-t", "1"))
    assert f"Volume {name}_dbdata  Removed" in forced.stderr, forced.stderr
    assert [r for r in leftovers(client, name) if r != ext] == []
    assert client.get(f"/networks/{ext}")["Name"] == ext  # the external one stays

    if shutil.which("docker-compose"):  # ours up, 1.29 down: nothing left either
        ok(compose(daemon, workdir, name, "up", "-d"))
        assert fetch(web_port, "/index.html") == f"hola desde {name}\n"
        gone = ok(legacy(daemon, workdir, name, "down", "-v", "-t", "1"))
        assert f"Removing {site}" in gone.stderr, gone.stderr
        assert f"Removing network {name}_balancer" in gone.stderr, gone.stderr
        assert [r for r in leftovers(client, name) if r != ext] == []
        assert client.get(f"/networks/{ext}")["Name"] == ext
