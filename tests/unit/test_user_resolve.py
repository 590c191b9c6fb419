from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime.spec_user import (process_user, resolve_exec_user, resolve_group_add,
                                        resolve_user, scoped_path)

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
twin:x:1000:2000::/home/twin:/bin/sh

nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """\
# comment
root:x:0:root
daemon:x:1:root,daemon
wheel:x:10:root,app
audio:x:29:app
app:x:1000:
staff:x:50:
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return tmp_path


def test_empty_user_is_root_with_memberships(rootfs: Path) -> None:
    assert resolve_user(rootfs, "") == (0, 0, [0, 1, 10])


def test_name(rootfs: Path) -> None:
    assert resolve_user(rootfs, "app") == (1000, 1000, [10, 29])
    assert resolve_exec_user(rootfs, "app").home == "/home/app"


def test_uid_first_passwd_match_wins(rootfs: Path) -> None:
    assert resolve_user(rootfs, "1000") == (1000, 1000, [10, 29])


def test_uid_without_entry(rootfs: Path) -> None:
    assert resolve_user(rootfs, "4321") == (4321, 0, [])
    assert resolve_exec_user(rootfs, "4321").home == "/"


def test_uid_gid(rootfs: Path) -> None:
    assert resolve_user(rootfs, "1000:1000") == (1000, 1000, [])
    assert resolve_user(rootfs, "4321:8765") == (4321, 8765, [])


def test_name_group(rootfs: Path) -> None:
    # an explicit group replaces the primary gid and drops supplementary groups
    assert resolve_user(rootfs, "app:staff") == (1000, 50, [])
    assert resolve_user(rootfs, "nobody:50") == (65534, 50, [])


def test_unknown_user(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument,
                       match="^unable to find user foo: no matching entries in passwd file$"):
        resolve_user(rootfs, "foo")


def test_unknown_group(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument,
                       match="^unable to find group bar: no matching entries in group file$"):
        resolve_user(rootfs, "app:bar")


def test_out_of_range(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="uids and gids must be in range 0-2147483647"):
        resolve_user(rootfs, "-1")
    with pytest.raises(InvalidArgument, match="uids and gids must be in range"):
        resolve_user(rootfs, "0:4294967296")


def test_no_etc_files(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "") == (0, 0, [])
    assert resolve_user(tmp_path, "12:34") == (12, 34, [])
    with pytest.raises(InvalidArgument, match="unable to find user app"):
        resolve_user(tmp_path, "app")
    with pytest.raises(InvalidArgument, match="unable to find group g"):
        resolve_user(tmp_path, "0:g")


def test_passwd_symlink_stays_inside_rootfs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "passwd").write_text("svc:x:77:77::/srv:/bin/sh\n")
    os.symlink("/data/passwd", root / "etc" / "passwd")  # absolute: relative to the rootfs
    assert resolve_user(root, "svc") == (77, 77, [])
    os.symlink("../../../../../../etc/shadow", root / "data" / "escape")
    assert scoped_path(root, "/data/escape") == root / "etc" / "shadow"


def test_scoped_path_dotdot(tmp_path: Path) -> None:
    assert scoped_path(tmp_path, "/../../etc/passwd") == tmp_path / "etc" / "passwd"
    assert scoped_path(tmp_path, "etc/./x/../group") == tmp_path / "etc" / "group"


def test_symlink_loop(tmp_path: Path) -> None:
    os.symlink("/a", tmp_path / "b")
    os.symlink("/b", tmp_path / "a")
    with pytest.raises(InvalidArgument, match="too many symlinks"):
        scoped_path(tmp_path, "/a")


def test_group_add(rootfs: Path) -> None:
    assert resolve_group_add(rootfs, ["audio", "50", "4242", "audio"]) == [29, 50, 4242]
    assert resolve_group_add(rootfs, []) == []
    with pytest.raises(InvalidArgument,
                       match="^Unable to find group nope: no matching entries in group file$"):
        resolve_group_add(rootfs, ["nope"])


def test_process_user(rootfs: Path) -> None:
    assert process_user(rootfs, "app", ["audio", "staff"]) == {
        "uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 29, 50]}
    assert process_user(rootfs, "1000:1000") == {"uid": 1000, "gid": 1000,
                                                 "additionalGids": [1000]}


def test_short_and_malformed_lines(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("short\nodd:x:abc:def\nok:x:5:6::/h:/bin/sh\n")
    assert resolve_user(tmp_path, "ok") == (5, 6, [])
    assert resolve_user(tmp_path, "odd") == (0, 0, [])  # Atoi errors read as 0, like Go
