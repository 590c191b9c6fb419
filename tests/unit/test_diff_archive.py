"""dockyard.diff.archive: docker cp out of a container, docker export, path stat header."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.diff.archive import (MODE_CHAR_DEVICE, MODE_DEVICE, MODE_DIR, MODE_SETUID,
                                   MODE_SYMLINK, PathStat, go_file_mode, rfc3339_nano,
                                   stat_path, tar_path)
from dockyard.errors import InvalidArgument, NotFound


@pytest.fixture()
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "rootfs"
    (r / "etc/conf.d").mkdir(parents=True)
    (r / "etc/passwd").write_text("container-passwd\n")
    (r / "etc/conf.d/a").write_text("a")
    os.symlink("/etc", r / "etclink")  # absolute: resolves inside the container
    os.symlink("../../../../../../../etc/passwd", r / "pwlink")
    (r / "bin").mkdir()
    (r / "bin/tool").write_text("#!/bin/sh\n")
    os.chmod(r / "bin/tool", 0o4755)
    yield r
    shutil.rmtree(tmp_path, ignore_errors=True)


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def tar_of(root: Path, path: str, **kw: str) -> tuple[PathStat, dict[str, tarfile.TarInfo]]:
    out = io.BytesIO()
    stat = tar_path(root, path, out, **kw)  # type: ignore[arg-type]
    return stat, members(out.getvalue())


def test_directory(root: Path) -> None:
    stat, got = tar_of(root, "/etc")
    assert stat.name == "etc" and stat.mode & MODE_DIR and stat.mode & 0o777 == 0o755
    assert sorted(got) == ["etc", "etc/conf.d", "etc/conf.d/a", "etc/passwd"]


def test_file_and_rename(root: Path) -> None:
    stat, got = tar_of(root, "/bin/tool", rename_to="renamed")
    assert list(got) == ["renamed"] and got["renamed"].mode == 0o4755
    assert stat.name == "tool" and stat.size == 10 and stat.mode & MODE_SETUID


def test_symlink_is_not_followed_unless_trailing_slash(root: Path) -> None:
    stat, got = tar_of(root, "/etclink")
    assert list(got) == ["etclink"] and got["etclink"].issym()
    assert stat.mode & MODE_SYMLINK and stat.link_target == "/etc"
    stat, got = tar_of(root, "/etclink/")
    assert "etclink/passwd" in got and stat.mode & MODE_DIR


def test_symlinks_never_reach_the_host(root: Path) -> None:
    stat, got = tar_of(root, "/etclink/passwd")
    out = io.BytesIO()
    tar_path(root, "/etclink/passwd", out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert tf.extractfile("passwd").read() == b"container-passwd\n"  # type: ignore[union-attr]
    assert stat_path(root, "/pwlink").link_target == "/etc/passwd"
    assert stat_path(root, "/../../etc/passwd").size == len("container-passwd\n")


def test_dot_means_contents(root: Path) -> None:
    stat, got = tar_of(root, "/etc/conf.d/.")
    assert stat.name == "." and sorted(got) == [".", "./a"]


def test_export_shape(root: Path) -> None:
    stat, got = tar_of(root, "/")
    assert stat.name == "/"
    assert sorted(got) == ["bin", "bin/tool", "etc", "etc/conf.d", "etc/conf.d/a",
                           "etc/passwd", "etclink", "pwlink"]


def test_not_found(root: Path) -> None:
    with pytest.raises(NotFound, match="Could not find the file /nope"):
        stat_path(root, "/nope")
    with pytest.raises(NotFound):
        tar_path(root, "/etc/passwd/x", io.BytesIO())  # type: ignore[arg-type]


def test_header_round_trip() -> None:
    stat = PathStat("passwd", 12, 0o644, "2024-01-02T03:04:05.5Z", "")
    decoded = json.loads(base64.b64decode(stat.to_header()))
    assert decoded == {"name": "passwd", "size": 12, "mode": 0o644,
                       "mtime": "2024-01-02T03:04:05.5Z", "linkTarget": ""}
    assert PathStat.from_header(stat.to_header()) == stat
    with pytest.raises(InvalidArgument):
        PathStat.from_header("!!")


def test_go_modes_and_time() -> None:
    assert go_file_mode(0o040755) == MODE_DIR | 0o755
    assert go_file_mode(0o120777) == MODE_SYMLINK | 0o777
    assert go_file_mode(0o020666) == MODE_DEVICE | MODE_CHAR_DEVICE | 0o666
    assert go_file_mode(0o104755) == MODE_SETUID | 0o755
    assert rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
