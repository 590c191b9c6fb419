"""dockyard.diff.safepath: chrooted path resolution, by path and by fd."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.diff.safepath import clean_relative, open_dir_in_root, resolve_in_root
from dockyard.errors import InvalidArgument


@pytest.fixture(autouse=True)
def _clean_tmp(tmp_path: Path) -> Iterator[None]:
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "passwd").write_text("inside\n")
    (r / "usr" / "lib").mkdir(parents=True)
    os.symlink("/etc", r / "abs")  # absolute: must mean <root>/etc
    os.symlink("../../../../../../etc", r / "usr" / "up")  # climbs: clamps at the root
    os.symlink("usr/lib", r / "lib")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    os.symlink("/etc/passwd", r / "pw")
    return r


def test_clean_relative() -> None:
    assert clean_relative("/etc/passwd") == "etc/passwd"
    assert clean_relative("./a//b/./c/") == "a/b/c"
    assert clean_relative("a/../b") == "b"
    assert clean_relative("/") == ""
    assert clean_relative("../x") is None
    assert clean_relative("a/../../x") is None


def test_absolute_symlink_is_chrooted(root: Path) -> None:
    assert resolve_in_root(root, "/abs/passwd") == root / "etc" / "passwd"
    assert resolve_in_root(root, "abs") == root / "etc"


def test_dotdot_clamps_at_root(root: Path) -> None:
    assert resolve_in_root(root, "/../../../etc/passwd") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/usr/up/passwd") == root / "etc" / "passwd"


def test_relative_symlink_and_missing_components(root: Path) -> None:
    assert resolve_in_root(root, "/lib/x/y") == root / "usr" / "lib" / "x" / "y"
    assert resolve_in_root(root, "/nope/../etc") == root / "etc"


def test_follow_final(root: Path) -> None:
    assert resolve_in_root(root, "/pw", follow_final=False) == root / "pw"
    assert resolve_in_root(root, "/pw") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/abs/", follow_final=False) == root / "etc"
    assert resolve_in_root(root, "/abs/.", follow_final=False) == root / "etc"


def test_symlink_loop(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="too many levels"):
        resolve_in_root(root, "/loop1/x")


def test_open_dir_in_root(root: Path) -> None:
    rfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd, resolved = open_dir_in_root(rfd, "/abs")
        try:
            assert resolved == "etc"
            assert os.path.samestat(os.fstat(fd), os.stat(root / "etc"))
        finally:
            os.close(fd)
        fd, resolved = open_dir_in_root(rfd, "lib/new/deeper", create=True)
        os.close(fd)
        assert resolved == "usr/lib/new/deeper"
        assert (root / "usr" / "lib" / "new" / "deeper").is_dir()
        fd, resolved = open_dir_in_root(rfd, "/usr/up/..")
        os.close(fd)
        assert resolved == ""
        with pytest.raises(FileNotFoundError):
            open_dir_in_root(rfd, "/missing")
        with pytest.raises(NotADirectoryError):
            open_dir_in_root(rfd, "/etc/passwd")
        with pytest.raises(InvalidArgument):
            open_dir_in_root(rfd, "/loop1")
    finally:
        os.close(rfd)
