"""Service keys beyond the core ones, through ``dockyard compose`` and a real daemon: engine
settings seen from inside the container, file secrets and configs, ``label_file``,
``external_links``, ``pid: service:``; and a key dockyard cannot honour refused by name before
anything is created."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, containers, ok

EXTRAS = """\
services:
  db:
    image: {image}
    command: [sleep, "3600"]
    stop_grace_period: 1s
  web:
    image: {image}
    command: [sleep, "3601"]
    stop_grace_period: 1s
    security_opt: [no-new-privileges]
    oom_score_adj: 200
    group_add: ["2000"]
    dns_opt: [ndots:3]
    label_file: ./labels
    external_links: ["{outsider}:legacy"]
    networks: [default, shared]
    secrets: [token]
    configs: [{{source: conf, target: /etc/app.conf}}]
  peek:
    image: {image}
    command: ["sh", "-c", "ps -o args; exec sleep 3602"]
    stop_grace_period: 1s
    pid: service:db
networks:
  shared:
    external: true
    name: {outsider}-net
secrets:
  token: {{file: ./token.txt}}
configs:
  conf: {{file: ./app.conf}}
"""


@pytest.fixture
def project(daemon: DaemonProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = "dyx" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    yield name, workdir
    daemon.docker("rm", "-f", f"{name}-outsider")
    compose(daemon, workdir, name, "down", "-v", "--force", "-t", "1")
    daemon.docker("network", "rm", f"{name}-outsider-net")


def run(daemon: DaemonProcess, container: str, *cmd: str) -> str:
    out = daemon.docker("exec", container, *cmd)
    assert out.returncode == 0, (cmd, out.stderr)
    return out.stdout.decode()


def test_engine_settings_secrets_and_links(daemon: DaemonProcess, bb_image: str,
                                           project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    outsider = f"{name}-outsider"
    assert daemon.docker("network", "create", f"{outsider}-net").returncode == 0
    started = daemon.docker("run", "-d", "--name", outsider, "--network", f"{outsider}-net",
                            bb_image, "sleep", "3600")
    assert started.returncode == 0, started.stderr
    (workdir / "labels").write_text("org.example.from-file=yes\n")
    (workdir / "token.txt").write_text("s3cret\n")
    (workdir / "app.conf").write_text("answer=42\n")
    (workdir / "compose.yaml").write_text(EXTRAS.format(image=bb_image, outsider=outsider))

    rendered = ok(compose(daemon, workdir, name, "config")).stdout
    assert "oom_score_adj: 200" in rendered and "pid: service:db" in rendered, rendered
    ok(compose(daemon, workdir, name, "up", "-d"))
    web = f"{name}-web-1"
    assert set(containers(client, name)) == {f"{name}-db-1", web, f"{name}-peek-1"}

    status = run(daemon, web, "cat", "/proc/self/status")
    assert any(ln.split() == ["NoNewPrivs:", "1"] for ln in status.splitlines()), status
    assert run(daemon, web, "cat", "/proc/1/oom_score_adj").strip() == "200"
    assert "2000" in run(daemon, web, "id", "-G").split()
    assert "ndots:3" in run(daemon, web, "cat", "/etc/resolv.conf")
    # pid: service:db — peek shares db's process namespace and sees its sleep (read from its
    # logs: the engine does not exec into a container sharing another's pid namespace yet)
    deadline = time.monotonic() + 10
    while "sleep 3600" not in (seen := compose(daemon, workdir, name, "logs", "peek").stdout):
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    assert client.get(f"/containers/{name}-peek-1/json")["HostConfig"]["PidMode"] == \
        f"container:{name}-db-1"
    assert run(daemon, web, "cat", "/run/secrets/token") == "s3cret\n"
    assert run(daemon, web, "cat", "/etc/app.conf") == "answer=42\n"
    ro = daemon.docker("exec", web, "sh", "-c", "echo x > /run/secrets/token")
    assert ro.returncode != 0, ro.stderr
    info = client.get(f"/containers/{web}/json")
    assert info["Config"]["Labels"]["org.example.from-file"] == "yes"
    assert f"{outsider}:legacy" in " ".join(info["HostConfig"]["Links"] or [])
    # the linked container (on a network web shares) is reached under the link's alias
    run(daemon, web, "ping", "-c1", "-W2", "legacy")

    # nothing changed → nothing recreated; an edited engine setting → recreated
    cid = info["Id"]
    ok(compose(daemon, workdir, name, "up", "-d"))
    assert client.get(f"/containers/{web}/json")["Id"] == cid
    (workdir / "compose.yaml").write_text(EXTRAS.format(image=bb_image, outsider=outsider)
                                          .replace("oom_score_adj: 200", "oom_score_adj: 300"))
    edited = ok(compose(daemon, workdir, name, "up", "-d"))
    assert f"Container {web}  Recreated" in edited.stderr, edited.stderr
    assert run(daemon, web, "cat", "/proc/1/oom_score_adj").strip() == "300"


def test_a_key_dockyard_cannot_honour_is_refused(daemon: DaemonProcess, bb_image: str,
                                                 project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    (workdir / "compose.yaml").write_text(
        f"services:\n  ok:\n    image: {bb_image}\n  web:\n    image: {bb_image}\n"
        "    gpus: all\n")
    for cmd in (("up", "-d"), ("config",)):
        refused = compose(daemon, workdir, name, *cmd)
        assert refused.returncode == 1, refused.stderr
        assert "compose.yaml: services.web.gpus: 'gpus' is not supported by dockyard (" in \
            refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert containers(client, name) == {}
