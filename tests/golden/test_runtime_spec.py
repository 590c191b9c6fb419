"""Golden tests: ``build_spec`` output for fixed options on a fixed host, byte for byte.

Each ``runtime_spec/<case>/options.json`` is ``SpecOptions.from_dict`` input (``rootfs``
defaults to the shared ``_rootfs`` with its /etc/passwd and /etc/group); ``expected.json`` is
the config.json with the rootfs path written as ``$ROOTFS``. After a deliberate change,
regenerate with ``UPDATE_GOLDEN=1 pytest tests/golden`` and review the diff before committing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dockyard.runtime.spec import HostFacts, SpecOptions, build_spec

HERE = Path(__file__).parent / "runtime_spec"
SHARED_ROOTFS = HERE / "_rootfs"
CASES = sorted(p.name for p in HERE.iterdir() if (p / "options.json").exists())

# A fixed host: x86_64, Linux >= 5.9 (40 caps), swap accounting, a tiny /dev for --privileged.
HOST = HostFacts(
    arch="x86_64", last_cap=40, swap_limit=True, default_nofile=1048576, cap_bounding=None,
    host_devices=(
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666,
         "uid": 0, "gid": 0},
        {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "fileMode": 0o660,
         "uid": 0, "gid": 6},
    ),
)


def render(case: str) -> str:
    data = json.loads((HERE / case / "options.json").read_text())
    rootfs = (HERE / case / data["rootfs"]) if "rootfs" in data else SHARED_ROOTFS
    data["rootfs"] = str(rootfs.resolve())
    spec = build_spec(SpecOptions.from_dict(data), HOST)
    text = json.dumps(spec, indent=2) + "\n"
    return text.replace(str(rootfs.resolve()), "$ROOTFS")


def test_cases_exist() -> None:
    assert {"plain", "privileged", "readonly_user_caps", "resources", "host_network",
            "netns_path", "tty"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    got = render(case)
    expected_path = HERE / case / "expected.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_path.write_text(got)
    assert expected_path.exists(), f"run UPDATE_GOLDEN=1 to create {expected_path}"
    assert json.loads(got) == json.loads(expected_path.read_text())
    assert got == expected_path.read_text()  # key order too: config.json stays diffable
