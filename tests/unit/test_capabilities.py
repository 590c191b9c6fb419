from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.runtime import capabilities as caps
from dockyard.runtime.capabilities import DEFAULT_CAPABILITIES, tweak


def test_default_set_is_dockers() -> None:
    assert len(DEFAULT_CAPABILITIES) == 14
    assert caps.capability_mask(DEFAULT_CAPABILITIES) == 0xA80425FB


def test_names_are_numbered_like_the_kernel() -> None:
    assert caps.CAPABILITY_NAMES[0] == "CAP_CHOWN"
    assert caps.CAPABILITY_NAMES[21] == "CAP_SYS_ADMIN"
    assert caps.CAPABILITY_NAMES[40] == "CAP_CHECKPOINT_RESTORE"
    assert len(set(caps.CAPABILITY_NAMES)) == 41


@pytest.mark.parametrize("name", ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_Net_Admin",
                                  " NET_ADMIN "])
def test_normalize(name: str) -> None:
    assert caps.normalize(name) == "CAP_NET_ADMIN"


def test_normalize_all_and_unknown() -> None:
    assert caps.normalize("all") == "ALL"
    with pytest.raises(InvalidArgument, match=r'^unknown capability: "CAP_FOO"$'):
        caps.normalize("foo")
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_FOO"'):
        caps.normalize("CAP_FOO")


def test_all_capabilities_follows_kernel_and_bounding() -> None:
    assert caps.all_capabilities(last_cap=37)[-1] == "CAP_AUDIT_READ"
    assert len(caps.all_capabilities(last_cap=40)) == 41
    no_sys_resource = ((1 << 41) - 1) & ~(1 << 24)
    got = caps.all_capabilities(last_cap=40, bounding_mask=no_sys_resource)
    assert "CAP_SYS_RESOURCE" not in got and len(got) == 40


def test_kernel_last_cap(tmp_path) -> None:
    f = tmp_path / "cap_last_cap"
    f.write_text("37\n")
    assert caps.kernel_last_cap(f) == 37
    f.write_text("99\n")
    assert caps.kernel_last_cap(f) == 40  # names we know
    assert caps.kernel_last_cap(tmp_path / "missing") == 40


def test_tweak_nothing_returns_defaults() -> None:
    assert tweak(DEFAULT_CAPABILITIES, last_cap=40) == list(DEFAULT_CAPABILITIES)


def test_tweak_add_and_drop_keep_order() -> None:
    got = tweak(DEFAULT_CAPABILITIES, ["net_admin", "SYS_PTRACE"], ["mknod", "CAP_NET_RAW"],
                last_cap=40)
    assert got[-2:] == ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
    assert "CAP_MKNOD" not in got and "CAP_NET_RAW" not in got
    assert len(got) == 14


def test_tweak_add_existing_is_not_duplicated() -> None:
    got = tweak(DEFAULT_CAPABILITIES, ["CHOWN", "chown"], last_cap=40)
    assert got == list(DEFAULT_CAPABILITIES)


def test_tweak_drop_all() -> None:
    assert tweak(DEFAULT_CAPABILITIES, [], ["ALL"], last_cap=40) == []
    assert tweak(DEFAULT_CAPABILITIES, ["NET_BIND_SERVICE"], ["all"], last_cap=40) == [
        "CAP_NET_BIND_SERVICE"]


def test_tweak_add_all() -> None:
    got = tweak(DEFAULT_CAPABILITIES, ["ALL"], ["SYS_ADMIN"], last_cap=40)
    assert len(got) == 40 and "CAP_SYS_ADMIN" not in got
    assert got[0] == "CAP_CHOWN"  # kernel order


def test_tweak_privileged_gets_everything() -> None:
    assert tweak(DEFAULT_CAPABILITIES, [], ["ALL"], privileged=True, last_cap=40) == \
        caps.all_capabilities(40)


def test_tweak_rejects_unknown_even_when_privileged() -> None:
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_NOPE"'):
        tweak(DEFAULT_CAPABILITIES, ["nope"], privileged=True)
    with pytest.raises(InvalidArgument, match='unknown capability: "CAP_NOPE"'):
        tweak(DEFAULT_CAPABILITIES, [], ["nope"])


def test_tweak_drops_caps_the_kernel_lacks() -> None:
    assert "CAP_BPF" not in tweak(DEFAULT_CAPABILITIES, ["BPF"], last_cap=37)


def test_mask() -> None:
    assert caps.capability_mask([]) == 0
    assert caps.capability_mask(["CAP_SYS_ADMIN"]) == 1 << 21
