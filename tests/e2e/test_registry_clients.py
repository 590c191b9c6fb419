"""Real registry clients against our registry, through our daemon where a daemon is involved:
the docker CLI with Bearer-token auth (`dockyard registry serve --auth token`), pull by
digest, skopeo reading what the daemon pushed and the daemon running what skopeo copied in,
and docker-py's login/push/pull.

Registries run as child processes on free 127.0.0.1 ports and are stopped by their PID (the
fixtures of test_registry_token.py and test_registry_roundtrip.py). Needs root and crun (the
session daemon); the skopeo tests also need skopeo.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_registry_roundtrip import our_registry  # noqa: F401  (fixture)
from tests.e2e.test_registry_token import HTTP, Server, serve

NEEDS_SKOPEO = pytest.mark.skipif(not shutil.which("skopeo"), reason="needs skopeo")
DIGEST_RE = re.compile(rb"digest: (sha256:[0-9a-f]{64})")


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`--auth token` with user alice/s3cret from htpasswd, no anonymous pull."""
    yield from serve(tmp_path_factory.mktemp("clienttoken"))


def unique_image(daemon: DaemonProcess, bb_image: str, name: str) -> str:
    """A one-off image (busybox + a layer holding /marker) tagged ``name``; its marker text."""
    marker = uuid.uuid4().hex
    box = "mk-" + marker[:12]
    made = daemon.docker("run", "--name", box, bb_image, "sh", "-c", f"echo {marker} > /marker")
    assert made.returncode == 0, made.stderr
    try:
        committed = daemon.docker("commit", box, name)
        assert committed.returncode == 0, committed.stderr
    finally:
        daemon.docker("rm", "-f", box)
    return marker


def image_id(daemon: DaemonProcess, name: str) -> str:
    out = daemon.docker("image", "inspect", "--format", "{{.Id}}", name)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


def pushed_digest(daemon: DaemonProcess, name: str) -> str:
    out = daemon.docker("push", name, timeout=120)
    assert out.returncode == 0, out.stderr
    found = DIGEST_RE.search(out.stdout)
    assert found, out.stdout
    return found.group(1).decode()


def skopeo_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return dict(env, HOME=str(home), REGISTRY_AUTH_FILE=str(home / "auth.json"))


def skopeo(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                         check=False, timeout=120, env=env)
    if ok:
        assert out.returncode == 0, out.stderr
    return out


# --- 1. the docker CLI and Bearer tokens ---------------------------------------------------
def test_docker_cli_login_push_run_with_bearer_tokens(daemon: DaemonProcess, bb_image: str,
                                                      token_registry: Server) -> None:
    host = token_registry.host
    name = f"{host}/alice/tok{uuid.uuid4().hex[:6]}:v1"
    marker = unique_image(daemon, bb_image, name)
    config = Path(daemon.env["DOCKER_CONFIG"]) / "config.json"
    try:
        bad = daemon.docker("login", "-u", "alice", "--password-stdin", host, input=b"wrong\n")
        assert bad.returncode == 1
        assert bad.stderr.decode() == (f'Error response from daemon: Get "http://{host}/v2/": '
                                       "unauthorized: incorrect username or password\n")
        assert host not in (config.read_text() if config.exists() else "")

        denied = daemon.docker("push", name, timeout=60)  # not logged in: an empty token
        assert denied.returncode == 1, denied
        assert b"denied: requested access to the resource is denied" in denied.stderr, denied

        good = daemon.docker("login", "-u", "alice", "--password-stdin", host, input=b"s3cret\n")
        assert good.returncode == 0 and b"Login Succeeded" in good.stdout, good.stderr
        assert host in json.loads(config.read_text())["auths"]
        digest = pushed_digest(daemon, name)
        assert daemon.docker("rmi", name).returncode == 0
        assert daemon.docker("image", "inspect", name).returncode != 0
        ran = daemon.docker("run", "--rm", name, "cat", "/marker", timeout=120)  # pulls it
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == f"{marker}\n".encode()
        repo_digests = daemon.docker("image", "inspect", "--format",
                                     "{{json .RepoDigests}}", name)
        assert f"@{digest}" in repo_digests.stdout.decode()
    finally:
        daemon.docker("logout", host)
        daemon.docker("rmi", "-f", name)
    assert host not in json.loads(config.read_text()).get("auths", {})
    # logged out: pulling is refused again (no anonymous pull on this registry)
    refused = daemon.docker("pull", name, timeout=60)
    assert refused.returncode == 1, refused
    assert b"denied: requested access to the resource is denied" in refused.stderr, refused


# --- 3. pull by digest ------------------------------------------------------------------------
def test_pull_and_run_by_digest(daemon: DaemonProcess, bb_image: str,
                                our_registry: int) -> None:  # noqa: F811
    repo = f"127.0.0.1:{our_registry}/dig/img{uuid.uuid4().hex[:6]}"
    marker = unique_image(daemon, bb_image, f"{repo}:v1")
    original = image_id(daemon, f"{repo}:v1")
    digest = pushed_digest(daemon, f"{repo}:v1")
    by_digest = f"{repo}@{digest}"
    try:
        assert daemon.docker("rmi", f"{repo}:v1").returncode == 0
        pulled = daemon.docker("pull", by_digest, timeout=120)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}".encode() in pulled.stdout
        assert by_digest.encode() in pulled.stdout
        assert image_id(daemon, by_digest) == original
        # a digest pull tags nothing: `docker images` shows <none> with the digest
        listed = daemon.docker("images", "--digests", "--format",
                               "{{.Repository}} {{.Tag}} {{.Digest}}")
        rows = [line.split() for line in listed.stdout.decode().splitlines()]
        assert [r for r in rows if r[0] == repo] == [[repo, "<none>", digest]], rows
        ran = daemon.docker("run", "--rm", by_digest, "cat", "/marker", timeout=60)
        assert ran.returncode == 0 and ran.stdout == f"{marker}\n".encode(), ran.stderr
        # removed again, `docker run` of the digest reference pulls it itself
        assert daemon.docker("rmi", by_digest).returncode == 0
        ran = daemon.docker("run", "--rm", by_digest, "cat", "/marker", timeout=120)
        assert ran.returncode == 0 and ran.stdout == f"{marker}\n".encode(), ran.stderr
        # a digest the registry does not have
        missing = f"{repo}@sha256:{'0' * 64}"
        absent = daemon.docker("pull", missing, timeout=60)
        assert absent.returncode == 1 and b"not found" in absent.stderr.lower(), absent
    finally:
        daemon.docker("rmi", "-f", by_digest)


# --- 2. skopeo ------------------------------------------------------------------------------
@NEEDS_SKOPEO
def test_skopeo_reads_what_the_daemon_pushed(daemon: DaemonProcess, bb_image: str,
                                             our_registry: int,  # noqa: F811
                                             tmp_path: Path) -> None:
    host = f"127.0.0.1:{our_registry}"
    name = f"{host}/from/daemon:v1"
    unique_image(daemon, bb_image, name)
    env = skopeo_env(tmp_path)
    try:
        digest = pushed_digest(daemon, name)
        info = json.loads(skopeo(env, "inspect", "--tls-verify=false",
                                 f"docker://{name}").stdout)
        assert info["Digest"] == digest
        assert info["Architecture"] == "amd64" and info["Os"] == "linux"
        assert len(info["Layers"]) == 2  # busybox + the marker layer
        raw = skopeo(env, "inspect", "--raw", "--tls-verify=false", f"docker://{name}").stdout
        manifest = json.loads(raw)
        assert [layer["digest"] for layer in manifest["layers"]] == info["Layers"]
        config = json.loads(skopeo(env, "inspect", "--config", "--tls-verify=false",
                                   f"docker://{name}").stdout)
        assert "sha256:" + image_id(daemon, name).split(":")[1] == manifest["config"]["digest"]
        assert len(config["rootfs"]["diff_ids"]) == 2

        out = tmp_path / "dir"
        skopeo(env, "copy", "--src-tls-verify=false", f"docker://{name}", f"dir:{out}")
        copied = json.loads((out / "manifest.json").read_text())
        assert copied == manifest  # copied as is, no conversion
        for desc in [manifest["config"], *manifest["layers"]]:
            blob = out / desc["digest"].split(":")[1]
            assert blob.stat().st_size == desc["size"]
            digest_of = subprocess.run(["sha256sum", str(blob)], capture_output=True, text=True,
                                       check=True).stdout.split()[0]
            assert "sha256:" + digest_of == desc["digest"]

        layout = tmp_path / "oci"
        skopeo(env, "copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{layout}:v1")
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
        oci = json.loads((layout / "blobs" / "sha256" /
                          index["manifests"][0]["digest"].split(":")[1]).read_text())
        assert [x["size"] for x in oci["layers"]] == [x["size"] for x in manifest["layers"]]
        tags = json.loads(skopeo(env, "list-tags", "--tls-verify=false",
                                 f"docker://{host}/from/daemon").stdout)
        assert tags["Tags"] == ["v1"]
    finally:
        daemon.docker("rmi", "-f", name)


@NEEDS_SKOPEO
def test_daemon_runs_what_skopeo_copied_in_and_skopeo_deletes(
        daemon: DaemonProcess, bb_image: str, our_registry: int,  # noqa: F811
        tmp_path: Path) -> None:
    host = f"127.0.0.1:{our_registry}"
    local = f"skolocal{uuid.uuid4().hex[:6]}:v1"
    marker = unique_image(daemon, bb_image, local)
    env = skopeo_env(tmp_path)
    archive = tmp_path / "image.tar"
    oci_archive = tmp_path / "image.oci.tar"
    names = [f"{host}/via/archive:1", f"{host}/via/oci:2"]
    try:
        saved = daemon.docker("save", "-o", str(archive), local, timeout=120)
        assert saved.returncode == 0, saved.stderr
        assert daemon.docker("rmi", local).returncode == 0
        skopeo(env, "copy", "--dest-tls-verify=false", f"docker-archive:{archive}",
               f"docker://{names[0]}")
        # and the OCI form of the same image, converted by skopeo, through an oci-archive
        skopeo(env, "copy", f"docker-archive:{archive}", f"oci-archive:{oci_archive}:x")
        skopeo(env, "copy", "--dest-tls-verify=false", f"oci-archive:{oci_archive}:x",
               f"docker://{names[1]}")
        oci_manifest = json.loads(skopeo(env, "inspect", "--raw", "--tls-verify=false",
                                         f"docker://{names[1]}").stdout)
        assert oci_manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        for name in names:
            pulled = daemon.docker("pull", name, timeout=120)
            assert pulled.returncode == 0, pulled.stderr
            ran = daemon.docker("run", "--rm", name, "cat", "/marker", timeout=60)
            assert ran.returncode == 0 and ran.stdout == f"{marker}\n".encode(), ran.stderr
            assert daemon.docker("rmi", name).returncode == 0

        # skopeo delete: the tag's manifest goes; the other repository is untouched
        digest = json.loads(skopeo(env, "inspect", "--tls-verify=false",
                                   f"docker://{names[0]}").stdout)["Digest"]
        skopeo(env, "delete", "--tls-verify=false", f"docker://{names[0]}")
        gone = skopeo(env, "inspect", "--tls-verify=false", f"docker://{names[0]}", ok=False)
        assert gone.returncode != 0 and "manifest unknown" in gone.stderr.lower(), gone.stderr
        r = HTTP.get(f"http://{host}/v2/via/archive/manifests/{digest}")
        assert r.status_code == 404
        absent = daemon.docker("pull", names[0], timeout=60)
        assert absent.returncode == 1 and b"not found" in absent.stderr.lower(), absent
        skopeo(env, "inspect", "--tls-verify=false", f"docker://{names[1]}")
        # delete by digest too
        second = json.loads(skopeo(env, "inspect", "--tls-verify=false",
                                   f"docker://{names[1]}").stdout)["Digest"]
        skopeo(env, "delete", "--tls-verify=false", f"docker://{host}/via/oci@{second}")
        assert HTTP.get(f"http://{host}/v2/via/oci/manifests/2").status_code == 404
    finally:
        daemon.docker("rmi", "-f", local, *names)


# --- 4. docker-py -------------------------------------------------------------------------
def test_docker_py_login_push_pull(daemon: DaemonProcess, bb_image: str,
                                   token_registry: Server, docker_client: Any) -> None:
    import docker

    host = token_registry.host
    repo = f"{host}/alice/py{uuid.uuid4().hex[:6]}"
    marker = unique_image(daemon, bb_image, f"{repo}:v1")
    original = image_id(daemon, f"{repo}:v1")
    try:
        with pytest.raises(docker.errors.APIError) as failed:
            docker_client.login(username="alice", password="wrong", registry=host, reauth=True)
        assert failed.value.status_code == 401
        assert failed.value.explanation == (f'Get "http://{host}/v2/": unauthorized: '
                                            "incorrect username or password")

        answer = docker_client.login(username="alice", password="s3cret", registry=host,
                                     reauth=True)
        assert answer["Status"] == "Login Succeeded"
        lines = list(docker_client.images.push(repo, tag="v1", stream=True, decode=True))
        assert not [x for x in lines if "error" in x or "errorDetail" in x], lines
        aux = [x["aux"] for x in lines if "aux" in x]
        assert aux and aux[-1]["Tag"] == "v1" and aux[-1]["Digest"].startswith("sha256:")
        digest = aux[-1]["Digest"]

        docker_client.images.remove(f"{repo}:v1")
        image = docker_client.images.pull(repo, tag="v1")
        assert image.id == original and f"{repo}:v1" in image.tags
        assert f"{repo}@{digest}" in image.attrs["RepoDigests"]
        out = docker_client.containers.run(f"{repo}:v1", ["cat", "/marker"], remove=True)
        assert out == f"{marker}\n".encode()

        docker_client.images.remove(f"{repo}:v1")
        by_digest = docker_client.images.pull(f"{repo}@{digest}")
        assert by_digest.id == original
        docker_client.images.remove(f"{repo}@{digest}")
        # explicit auth_config, and wrong credentials given that way
        again = docker_client.images.pull(repo, tag="v1",
                                          auth_config={"username": "alice",
                                                       "password": "s3cret"})
        assert again.id == original
        docker_client.images.remove(f"{repo}:v1")
        # wrong credentials: refused before any progress line, so it is the call's status
        # (moby's 500, not a 401: that would make the docker CLI prompt for a login)
        with pytest.raises(docker.errors.APIError) as refused:
            docker_client.api.pull(repo, tag="v1", stream=True, decode=True,
                                   auth_config={"username": "alice", "password": "nope"})
        assert refused.value.status_code == 500
        assert "incorrect username or password" in str(refused.value.explanation)
        assert daemon.docker("image", "inspect", f"{repo}:v1").returncode != 0
    finally:
        daemon.docker("rmi", "-f", f"{repo}:v1")


# --- gaps in the API layer (dockyard/api/), outside the registry code ------------------------
def test_images_reference_filter_matches_digest_pulls(daemon: DaemonProcess, bb_image: str,
                                                      our_registry: int) -> None:  # noqa: F811
    repo = f"127.0.0.1:{our_registry}/filt/img{uuid.uuid4().hex[:6]}"
    unique_image(daemon, bb_image, f"{repo}:v1")  # never bb itself: see the test below
    digest = pushed_digest(daemon, f"{repo}:v1")
    try:
        daemon.docker("rmi", f"{repo}:v1")
        assert daemon.docker("pull", f"{repo}@{digest}", timeout=120).returncode == 0
        listed = daemon.docker("images", "--digests", "--format", "{{.Tag}} {{.Digest}}", repo)
        assert listed.stdout.decode().split() == ["<none>", digest]
    finally:
        daemon.docker("rmi", "-f", f"{repo}@{digest}")


def test_docker_py_pull_with_wrong_password_raises(daemon: DaemonProcess,
                                                   token_registry: Server,
                                                   docker_client: Any) -> None:
    import docker

    with pytest.raises(docker.errors.APIError) as refused:
        docker_client.images.pull(f"{token_registry.host}/alice/none", tag="v1",
                                  auth_config={"username": "alice", "password": "nope"})
    assert not isinstance(refused.value, docker.errors.ImageNotFound)
    assert refused.value.status_code == 500  # moby's errdefs.Unknown for a refused login
    assert "incorrect username or password" in str(refused.value.explanation)


def test_pull_refusals_are_the_status_of_the_call(daemon: DaemonProcess, token_registry: Server,
                                                   our_registry: int,  # noqa: F811
                                                   docker_client: Any) -> None:
    """Moby answers /images/create with an error status when the registry refuses before
    any progress: 404 for an unknown manifest or a denied repository, 500 for the rest."""
    import docker

    host = f"127.0.0.1:{our_registry}"
    with pytest.raises(docker.errors.NotFound) as missing:
        docker_client.api.pull(f"{host}/nobody/nothing", tag="1", stream=True)
    assert missing.value.status_code == 404
    assert str(missing.value.explanation) == (f"manifest for {host}/nobody/nothing:1 not found: "
                                              "name unknown: repository name not known to "
                                              "registry")
    # anonymous, to a token registry without anonymous pull: Docker's "pull access denied"
    with pytest.raises(docker.errors.APIError) as denied:
        docker_client.api.pull(f"{token_registry.host}/alice/none", tag="v1", stream=True)
    assert denied.value.status_code == 404  # the registry said DENIED: moby's not-found
    assert "pull access denied for" in str(denied.value.explanation), denied.value.explanation
    # nothing listens there: the connection is refused, a 500 with the dial error
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(docker.errors.APIError) as down:
        docker_client.api.pull(f"127.0.0.1:{closed}/x/y", tag="1", stream=True)
    assert down.value.status_code == 500
    assert "connection refused" in str(down.value.explanation).lower(), down.value.explanation
    # the docker CLI prints the daemon's words and exits 1, without asking for a login
    cli = daemon.docker("pull", f"127.0.0.1:{closed}/x/y:1", timeout=60)
    assert cli.returncode == 1
    assert cli.stderr.decode().startswith("Error response from daemon: ")
    assert b"Username" not in cli.stdout + cli.stderr
    wrong = daemon.docker("pull", f"{token_registry.host}/alice/none:v1", timeout=60)
    assert wrong.returncode == 1 and b"Username" not in wrong.stdout + wrong.stderr
    assert wrong.stderr.decode().startswith("Error response from daemon: pull access denied")


def test_rmi_of_a_digest_reference_keeps_the_other_tag(daemon: DaemonProcess, bb_image: str,
                                                       our_registry: int) -> None:  # noqa: F811
    repo = f"127.0.0.1:{our_registry}/rmi/img{uuid.uuid4().hex[:6]}"
    keep = f"keep{uuid.uuid4().hex[:6]}:1"
    unique_image(daemon, bb_image, f"{repo}:v1")
    digest = pushed_digest(daemon, f"{repo}:v1")
    try:
        assert daemon.docker("tag", f"{repo}:v1", keep).returncode == 0
        assert daemon.docker("rmi", f"{repo}:v1").returncode == 0
        assert daemon.docker("pull", f"{repo}@{digest}", timeout=120).returncode == 0
        assert daemon.docker("rmi", f"{repo}@{digest}").returncode == 0
        assert daemon.docker("image", "inspect", keep).returncode == 0
    finally:
        daemon.docker("rmi", "-f", keep, f"{repo}@{digest}")
