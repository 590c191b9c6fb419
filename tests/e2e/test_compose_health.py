"""``depends_on`` conditions against the daemon's real HEALTHCHECK probes: ``service_healthy``
(web starts only once db is healthy; an unhealthy db fails ``up`` with Compose's message and
web never starts), ``service_completed_successfully`` with a one-shot init, and ``up --wait``."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard.client.api import APIClient
from dockyard.client.errors import APIError
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose

HEALTHY = """\
services:
  db:
    image: {image}
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      retries: 10
  web:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on:
      db: {{condition: service_healthy}}
"""

UNHEALTHY = """\
services:
  db:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      retries: 1
  web:
    image: {image}
    command: ["sleep", "3600"]
    depends_on:
      db: {{condition: service_healthy}}
"""

INIT = """\
services:
  init:
    image: {image}
    command: ["sh", "-c", "sleep 1; exit {code}"]
  web:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on:
      init: {{condition: service_completed_successfully}}
"""


def ts(text: str) -> datetime:
    """Docker's RFC 3339 time with nanoseconds → datetime (microseconds)."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def inspect(client: APIClient, name: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = client.get(f"/containers/{name}/json")
        return out
    except APIError as exc:
        if exc.status == 404:
            return None
        raise


@pytest.fixture
def project(daemon: DaemonProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = "dyh" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "-t", "1")


def test_web_waits_for_healthy_db(daemon: DaemonProcess, bb_image: str,
                                  project: tuple[str, Path]) -> None:
    name, workdir = project
    (workdir / "compose.yaml").write_text(HEALTHY.format(image=bb_image))
    up = compose(daemon, workdir, name, "up", "-d")
    assert up.returncode == 0, up.stderr
    for line in (f" Container {name}-db-1  Waiting", f" Container {name}-db-1  Healthy",
                 f" Container {name}-web-1  Started"):
        assert line in up.stderr, up.stderr
    client = APIClient(daemon.host)
    db, web = inspect(client, f"{name}-db-1"), inspect(client, f"{name}-web-1")
    assert db is not None and web is not None
    assert db["State"]["Health"]["Status"] == "healthy"
    waited = (ts(web["State"]["StartedAt"]) - ts(db["State"]["StartedAt"])).total_seconds()
    assert waited >= 2.0, (db["State"], web["State"])


def test_unhealthy_dependency_fails_up(daemon: DaemonProcess, bb_image: str,
                                       project: tuple[str, Path]) -> None:
    name, workdir = project
    (workdir / "compose.yaml").write_text(UNHEALTHY.format(image=bb_image))
    up = compose(daemon, workdir, name, "up", "-d")
    assert up.returncode == 1, up.stderr
    assert up.stderr.rstrip().endswith(
        f"dependency failed to start: container {name}-db-1 is unhealthy"), up.stderr
    assert f" Container {name}-db-1  Error" in up.stderr
    web = inspect(APIClient(daemon.host), f"{name}-web-1")
    assert web is None or web["State"]["Status"] == "created", web


def test_completed_successfully_and_wait(daemon: DaemonProcess, bb_image: str,
                                         project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    (workdir / "compose.yaml").write_text(INIT.format(image=bb_image, code=0))
    up = compose(daemon, workdir, name, "up", "--wait")
    assert up.returncode == 0, up.stderr
    assert f" Container {name}-init-1  Exited" in up.stderr, up.stderr
    init, web = inspect(client, f"{name}-init-1"), inspect(client, f"{name}-web-1")
    assert init is not None and web is not None
    assert init["State"]["Status"] == "exited" and web["State"]["Running"]
    assert ts(web["State"]["StartedAt"]) >= ts(init["State"]["FinishedAt"])

    (workdir / "compose.yaml").write_text(INIT.format(image=bb_image, code=3))
    again = compose(daemon, workdir, name, "--progress", "tty", "up", "-d")  # the live block
    assert again.returncode == 1, again.stderr
    block, _, error = again.stderr.rpartition("\x1b[2K[+] Running ")  # the final redraw
    assert error.rstrip().endswith(
        'service "init" didn\'t complete successfully: exit 3'), again.stderr
    assert "\x1b[" in block and f"\u2718\x1b[0m Container {name}-init-1" in error, again.stderr
