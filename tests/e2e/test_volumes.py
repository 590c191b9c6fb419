"""Volumes through the real docker CLI and docker-py: named, bind, anonymous, tmpfs,
--volumes-from, copy-up, and never committed into images."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


def ok(daemon: DaemonProcess, *args: str) -> str:
    out = daemon.docker(*args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


@pytest.fixture
def name() -> str:
    return "v" + uuid.uuid4().hex[:10]


def test_named_volume_survives_containers(daemon: DaemonProcess, bb_image: str,
                                          name: str) -> None:
    ok(daemon, "volume", "create", name)
    assert name in ok(daemon, "volume", "ls", "-q").split()
    ok(daemon, "run", "--rm", "-v", f"{name}:/data", bb_image, "sh", "-c", "echo kept > /data/f")
    assert ok(daemon, "run", "--rm", "-v", f"{name}:/data", bb_image, "cat", "/data/f") == "kept\n"
    info = json.loads(ok(daemon, "volume", "inspect", name))[0]
    assert info["Driver"] == "local" and Path(info["Mountpoint"], "f").read_text() == "kept\n"
    ok(daemon, "volume", "rm", name)
    out = daemon.docker("volume", "inspect", name)
    assert out.returncode != 0 and b"no such volume" in out.stderr


def test_auto_created_volume_is_populated_from_the_image(daemon: DaemonProcess,
                                                         bb_image: str, name: str) -> None:
    listing = ok(daemon, "run", "--rm", "-v", f"{name}:/etc", bb_image, "ls", "/etc")
    assert "passwd" in listing.split()
    assert "passwd" in ok(daemon, "run", "--rm", "-v", f"{name}:/x", bb_image, "ls", "/x").split()
    ok(daemon, "volume", "rm", name)


def test_volume_in_use_cannot_be_removed(daemon: DaemonProcess, bb_image: str,
                                         name: str) -> None:
    ok(daemon, "run", "-d", "--name", name, "-v", f"{name}:/data", bb_image, "sleep", "60")
    out = daemon.docker("volume", "rm", name)
    assert out.returncode != 0 and b"volume is in use" in out.stderr
    ok(daemon, "rm", "-f", name)
    ok(daemon, "volume", "rm", name)


def test_bind_mounts_and_read_only(daemon: DaemonProcess, bb_image: str,
                                   tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    assert ok(daemon, "run", "--rm", "-v", f"{tmp_path}:/host", bb_image, "sh", "-c",
              "cat /host/in.txt; echo back > /host/out.txt") == "from host\n"
    assert (tmp_path / "out.txt").read_text() == "back\n"
    denied = daemon.docker("run", "--rm", "-v", f"{tmp_path}:/host:ro", bb_image, "touch",
                           "/host/x")
    assert denied.returncode != 0 and not (tmp_path / "x").exists()
    assert ok(daemon, "run", "--rm", "--mount", f"type=bind,source={tmp_path},target=/m,readonly",
              bb_image, "cat", "/m/in.txt") == "from host\n"
    missing = daemon.docker("run", "--rm", "--mount", "type=bind,source=/no/such/dir,target=/m",
                            bb_image, "true")
    assert missing.returncode == 125 and b"bind source path does not exist" in missing.stderr
    bad = daemon.docker("run", "--rm", "-v", "/a:/b:xyz", bb_image, "true")
    assert bad.returncode == 125 and b"invalid mode" in bad.stderr


def test_tmpfs_and_anonymous_volumes(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    assert "tmpfs" in ok(daemon, "run", "--rm", "--tmpfs", "/scratch", bb_image, "sh", "-c",
                         "grep ' /scratch ' /proc/mounts")
    ok(daemon, "run", "-d", "--name", name, "-v", "/anon", bb_image, "sh", "-c",
       "echo shared > /anon/f; sleep 60")
    mounts = json.loads(ok(daemon, "inspect", "-f", "{{json .Mounts}}", name))
    anonymous = mounts[0]["Name"]
    assert mounts[0]["Destination"] == "/anon" and len(anonymous) == 64
    import time
    time.sleep(0.3)
    assert ok(daemon, "run", "--rm", "--volumes-from", name, bb_image, "cat", "/anon/f") == \
        "shared\n"
    ok(daemon, "stop", "-t", "0", name)  # --volumes-from works from a stopped container too
    assert ok(daemon, "run", "--rm", "--volumes-from", f"{name}:ro", bb_image, "cat",
              "/anon/f") == "shared\n"
    ok(daemon, "rm", "-v", name)
    assert anonymous not in ok(daemon, "volume", "ls", "-q").split()


def test_volume_data_is_never_committed(daemon: DaemonProcess, bb_image: str,
                                        name: str) -> None:
    ok(daemon, "run", "--name", name, "-v", "/vol", bb_image, "sh", "-c",
       "echo secret > /vol/data; echo layer > /file")
    diff = ok(daemon, "diff", name)
    assert "/vol" not in diff and "A /file" in diff
    ok(daemon, "commit", name, f"{name}:c")
    listing = ok(daemon, "run", "--rm", "--entrypoint", "", f"{name}:c", "sh", "-c",
                 "cat /file; ls -A /vol 2>/dev/null | wc -l")
    assert listing.split() == ["layer", "0"]
    ok(daemon, "rm", "-v", name)
    ok(daemon, "rmi", f"{name}:c")


def test_docker_py_volumes(docker_client, bb_image: str, name: str) -> None:  # type: ignore[no-untyped-def]
    volume = docker_client.volumes.create(name, labels={"suite": "py"})
    assert volume.attrs["Labels"] == {"suite": "py"}
    out = docker_client.containers.run(bb_image, "sh -c 'echo py > /d/f; cat /d/f'",
                                       volumes={name: {"bind": "/d", "mode": "rw"}}, remove=True)
    assert out == b"py\n"
    assert name in [v.name for v in docker_client.volumes.list(filters={"label": "suite=py"})]
    volume.remove()
