"""Images in ``dockyard compose`` against a real daemon: ``up`` recreates a container whose
image tag now names another image (same config hash), ``up --build/--no-build/--pull``, and
``compose pull`` skipping what Compose v2 skips (``pull_policy: never|build``, build-only
services, ``missing`` images present, ``--ignore-buildable``) against a real registry."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.client.api import APIClient
from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_compose_cli import compose, containers, ok
from tests.e2e.test_registry_roundtrip import our_registry  # noqa: F401 (fixture)

IMAGE_LABEL = "com.docker.compose.image"


@pytest.fixture
def project(daemon: DaemonProcess, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = "dyi" + uuid.uuid4().hex[:6]
    workdir = tmp_path / "app"
    workdir.mkdir()
    yield name, workdir
    compose(daemon, workdir, name, "down", "-v", "--force", "-t", "1")
    listed = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()
    for ref in listed.split():
        if name in ref:
            daemon.docker("rmi", "-f", ref)


def image_id(client: APIClient, ref: str) -> str:
    return str(client.get(f"/images/{ref}/json")["Id"])


def build(daemon: DaemonProcess, ctx: Path, tag: str, dockerfile: str) -> None:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    out = daemon.docker("build", "-q", "-t", tag, str(ctx), timeout=120)
    assert out.returncode == 0, out.stderr


def test_up_recreates_when_the_tag_names_another_image(daemon: DaemonProcess, bb_image: str,
                                                       project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    tag = f"{name}-base:1"
    build(daemon, workdir / "v1", tag, f"FROM {bb_image}\nLABEL org.example.v=1\n")
    (workdir / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {tag}\n    command: [sleep, '3600']\n"
        "    stop_grace_period: 1s\n  other:\n    image: " + bb_image +
        "\n    command: [sleep, '3600']\n    stop_grace_period: 1s\n")
    ok(compose(daemon, workdir, name, "up", "-d"))
    first = containers(client, name)
    web = first[f"{name}-web-1"]
    assert web["Labels"][IMAGE_LABEL] == image_id(client, tag)
    hash_before = web["Labels"]["com.docker.compose.config-hash"]

    again = ok(compose(daemon, workdir, name, "up", "-d"))
    assert "Recreate" not in again.stderr, again.stderr
    assert {n: c["Id"] for n, c in containers(client, name).items()} == \
        {n: c["Id"] for n, c in first.items()}

    # the same tag now names another image: web (only) is recreated, with the same hash
    build(daemon, workdir / "v2", tag, f"FROM {bb_image}\nLABEL org.example.v=2\n")
    new_id = image_id(client, tag)
    assert new_id != web["Labels"][IMAGE_LABEL]
    changed = ok(compose(daemon, workdir, name, "up", "-d"))
    assert f"Container {name}-web-1  Recreate" in changed.stderr, changed.stderr
    assert f"Container {name}-web-1  Recreated" in changed.stderr, changed.stderr
    assert f"{name}-other-1  Recreate" not in changed.stderr, changed.stderr
    now = containers(client, name)
    assert now[f"{name}-web-1"]["Id"] != web["Id"]
    assert now[f"{name}-other-1"]["Id"] == first[f"{name}-other-1"]["Id"]
    assert now[f"{name}-web-1"]["Labels"][IMAGE_LABEL] == new_id
    assert now[f"{name}-web-1"]["Labels"]["com.docker.compose.config-hash"] == hash_before
    inspect = client.get(f"/containers/{name}-web-1/json")
    assert inspect["Image"] == new_id and inspect["State"]["Running"]


BUILT = """\
services:
  app:
    build: .
    command: [sleep, "3600"]
    stop_grace_period: 1s
"""


def test_up_build_no_build_and_pull_flags(daemon: DaemonProcess, bb_image: str,
                                          project: tuple[str, Path]) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    (workdir / "compose.yaml").write_text(BUILT)
    (workdir / "Dockerfile").write_text(f"FROM {bb_image}\nLABEL org.example.v=1\n")
    ref = f"{name}-app"

    # --no-build with the image missing: a clear error, nothing created
    refused = compose(daemon, workdir, name, "up", "-d", "--no-build")
    assert refused.returncode == 1, refused.stderr
    assert f'service "app" needs image {ref}' in refused.stderr, refused.stderr
    assert "--no-build is set" in refused.stderr and "Traceback" not in refused.stderr
    assert containers(client, name) == {}
    both = compose(daemon, workdir, name, "up", "-d", "--build", "--no-build")
    assert both.returncode == 1 and "--build and --no-build are incompatible" in both.stderr
    bad = compose(daemon, workdir, name, "up", "-d", "--pull", "sometimes")
    assert bad.returncode == 1 and 'invalid --pull option "sometimes"' in bad.stderr

    # plain up builds what is missing
    first = ok(compose(daemon, workdir, name, "up", "-d"))
    assert f"Image {ref}  Built" in first.stderr, first.stderr
    built = image_id(client, ref)
    cid = containers(client, name)[f"{name}-app-1"]["Id"]

    # an edited Dockerfile is not rebuilt by up (the image is there), nor by --no-build
    (workdir / "Dockerfile").write_text(f"FROM {bb_image}\nLABEL org.example.v=2\n")
    for args in ((), ("--no-build",)):
        again = ok(compose(daemon, workdir, name, "up", "-d", *args))
        assert "Building" not in again.stderr and "Recreate" not in again.stderr, again.stderr
    assert image_id(client, ref) == built
    assert containers(client, name)[f"{name}-app-1"]["Id"] == cid

    # --build always builds; the new image id recreates the container
    rebuilt = ok(compose(daemon, workdir, name, "up", "-d", "--build"))
    assert f"Image {ref}  Built" in rebuilt.stderr, rebuilt.stderr
    assert f"Container {name}-app-1  Recreated" in rebuilt.stderr, rebuilt.stderr
    new = image_id(client, ref)
    assert new != built
    info = client.get(f"/containers/{name}-app-1/json")
    assert info["Image"] == new and info["Config"]["Labels"]["org.example.v"] == "2"

    # --pull never: an image that is not there is refused, not pulled
    (workdir / "compose.yaml").write_text(
        BUILT + f"  extra:\n    image: {name}-absent:1\n    command: [sleep, '3600']\n")
    never = compose(daemon, workdir, name, "up", "-d", "--pull", "never")
    assert never.returncode == 1, never.stderr
    assert f'service "extra" has pull_policy "never" and its image {name}-absent:1 is not ' \
        "present locally" in never.stderr, never.stderr
    assert f"{name}-extra-1" not in containers(client, name)


def test_pull_skips_what_compose_skips(daemon: DaemonProcess, bb_image: str,
                                       project: tuple[str, Path],
                                       request: pytest.FixtureRequest) -> None:
    name, workdir = project
    client = APIClient(daemon.host)
    registry = int(request.getfixturevalue("our_registry"))
    reg = f"127.0.0.1:{registry}/{name}"
    remote = f"{reg}/base:1"
    assert daemon.docker("tag", bb_image, remote).returncode == 0
    pushed = daemon.docker("push", remote, timeout=120)
    assert pushed.returncode == 0, pushed.stderr
    assert daemon.docker("rmi", remote).returncode == 0
    (workdir / "Dockerfile").write_text(f"FROM {bb_image}\n")
    (workdir / "compose.yaml").write_text(f"""\
services:
  remote:
    image: {remote}
  never:
    image: {reg}/never:1
    pull_policy: never
  bypolicy:
    image: {reg}/bypolicy:1
    build: .
    pull_policy: build
  buildonly:
    build: .
  present:
    image: {bb_image}
    pull_policy: missing
  buildable:
    image: {reg}/buildable:1
    build: .
""")
    pulled = ok(compose(daemon, workdir, name, "pull"))
    err = pulled.stderr
    assert f"Image {remote}  Pulled" in err, err
    assert f"Image {reg}/never:1  Skipped" in err, err
    assert f"Image {reg}/bypolicy:1  Skipped" in err, err
    assert "Service buildonly  Skipped - No image to be pulled" in err, err
    assert f"Image {bb_image}  Skipped - Image is already present locally" in err, err
    # a buildable image the registry does not have: a warning to build it, not a failure
    assert "must be built from source" in err and "docker compose build buildable" in err, err
    assert image_id(client, remote).startswith("sha256:")
    for skipped in ("never", "bypolicy"):
        assert client.get("/images/json", {"filters": {"reference": [f"{reg}/{skipped}"]}}) \
            == []

    ignored = ok(compose(daemon, workdir, name, "pull", "--ignore-buildable", "buildable"))
    assert f"Image {reg}/buildable:1  Skipped - Image can be built" in ignored.stderr
    assert "must be built" not in ignored.stderr, ignored.stderr

    # a service that can only be pulled fails the command, unless --ignore-pull-failures
    (workdir / "compose.yaml").write_text(
        f"services:\n  gone:\n    image: {reg}/gone:1\n  remote:\n    image: {remote}\n")
    failed = compose(daemon, workdir, name, "pull", "gone")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert f"Image {reg}/gone:1  Error" in failed.stderr, failed.stderr
    tolerated = ok(compose(daemon, workdir, name, "pull", "--ignore-pull-failures"))
    assert "WARN" in tolerated.stderr and f"Image {remote}  Pulled" in tolerated.stderr
    policy = ok(compose(daemon, workdir, name, "pull", "--policy", "missing", "remote"))
    assert f"Image {remote}  Skipped - Image is already present locally" in policy.stderr
    wrong = compose(daemon, workdir, name, "pull", "--policy", "later")
    assert wrong.returncode == 1 and "invalid pull policy" in wrong.stderr, wrong.stderr
