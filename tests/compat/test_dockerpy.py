"""docker-py 7.1 (the SDK people script Docker with) against a live dockyard daemon."""
from __future__ import annotations

import io
import tarfile
import uuid

import docker
import pytest
from docker.errors import APIError, ContainerError, ImageNotFound, NotFound

from dockyard.testing.daemon import DaemonProcess


@pytest.fixture
def name() -> str:
    return "py" + uuid.uuid4().hex[:10]


def test_ping_version_info(docker_client: docker.DockerClient) -> None:
    assert docker_client.ping() is True
    assert docker_client.version()["ApiVersion"] == "1.50"
    assert docker_client.info()["Driver"] == "overlay2"


def test_run_returns_output(docker_client: docker.DockerClient, bb_image: str) -> None:
    assert docker_client.containers.run(bb_image, "echo hi", remove=True) == b"hi\n"
    with pytest.raises(ContainerError) as failed:
        docker_client.containers.run(bb_image, ["sh", "-c", "echo oops >&2; exit 4"],
                                     remove=True)
    assert failed.value.exit_status == 4


def test_run_remove_never_loses_output(docker_client: docker.DockerClient,
                                       bb_image: str) -> None:
    """run(remove=True) removes the container before it reads the followed logs."""
    outs = [docker_client.containers.run(bb_image, ["echo", f"n{i}"], remove=True)
            for i in range(15)]
    assert outs == [f"n{i}\n".encode() for i in range(15)]


def test_detached_container_api(docker_client: docker.DockerClient, bb_image: str,
                                name: str) -> None:
    c = docker_client.containers.run(bb_image, ["sh", "-c", "echo ready; sleep 60"],
                                     detach=True, name=name, labels={"suite": "compat"})
    try:
        c.reload()
        assert c.status == "running" and c.name == name
        assert c.labels == {"suite": "compat"}
        assert docker_client.containers.get(name).id == c.id
        assert c.id in [x.id for x in docker_client.containers.list(filters={"label": "suite=compat"})]
        result = c.exec_run("cat /etc/hostname")
        assert result.exit_code == 0 and result.output.strip() == c.id[:12].encode()
        assert c.exec_run(["sh", "-c", "exit 9"]).exit_code == 9
        assert "sleep" in " ".join(" ".join(p) for p in c.top()["Processes"])
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.stop(timeout=1)
        assert c.wait()["StatusCode"] == 137
        assert b"ready" in c.logs()
        c.start()
        c.kill()
        c.wait()
    finally:
        c.remove(force=True)
    with pytest.raises(NotFound):
        docker_client.containers.get(name)


def test_put_and_get_archive(docker_client: docker.DockerClient, bb_image: str,
                             name: str) -> None:
    c = docker_client.containers.run(bb_image, "sleep 60", detach=True, name=name)
    try:
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
        assert c.put_archive("/tmp", data.getvalue())
        stream, stat = c.get_archive("/tmp/hello.txt")
        assert stat["name"] == "hello.txt" and stat["size"] == 5
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile("hello.txt")
            assert member is not None and member.read() == b"hello"
    finally:
        c.remove(force=True)


def test_images_api(docker_client: docker.DockerClient, bb_image: str, name: str) -> None:
    image = docker_client.images.get(bb_image)
    assert "bb:latest" in image.tags
    image.tag(f"{name}/copy", "v1")
    assert f"{name}/copy:v1" in docker_client.images.get(f"{name}/copy:v1").tags
    assert image.history()[0]["Id"] == image.id
    docker_client.images.remove(f"{name}/copy:v1")
    with pytest.raises(ImageNotFound):
        docker_client.images.get(f"{name}/copy:v1")


def test_commit_and_save_load(docker_client: docker.DockerClient, bb_image: str,
                              name: str) -> None:
    c = docker_client.containers.run(bb_image, ["sh", "-c", "echo v > /version"], detach=True,
                                     name=name)
    c.wait()
    image = c.commit(repository=name, tag="c1", message="from docker-py")
    c.remove()
    assert docker_client.containers.run(image.id, "cat /version", remove=True) == b"v\n"
    blob = b"".join(image.save())
    docker_client.images.remove(image.id, force=True)
    loaded = docker_client.images.load(blob)
    assert loaded[0].id == image.id


def test_errors(docker_client: docker.DockerClient, bb_image: str) -> None:
    with pytest.raises(NotFound):
        docker_client.containers.get("no-such-container-x")
    with pytest.raises(APIError) as bad:
        docker_client.containers.create(bb_image, "true", name="bad/name")
    assert bad.value.status_code == 400
    with pytest.raises(ImageNotFound):
        docker_client.containers.create("no-such-image-y:latest", "true")


def test_events_and_wait(docker_client: docker.DockerClient, bb_image: str,
                         daemon: DaemonProcess) -> None:
    import time
    start = int(time.time()) - 1
    docker_client.containers.run(bb_image, "true", remove=True)
    events = docker_client.events(since=start, until=int(time.time()) + 1, decode=True)
    actions = {e["Action"] for e in events if e.get("Type") == "container"}
    assert {"create", "start", "die", "destroy"} <= actions
