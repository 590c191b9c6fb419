"""Refused Dockerfile flags, cache-miss reasons and build registry auth, without a daemon."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dockyard.builder import unsupported
from dockyard.builder.cache import BuildCache, StepKey
from dockyard.builder.executor import Removal
from dockyard.builder.instructions import parse_stages
from dockyard.builder.misses import changed_args, missed_reason
from dockyard.builder.parser import DockerfileParseError
from dockyard.engine.buildpull import auth_header
from dockyard.errors import InvalidArgument
from dockyard.metadata.db import Database


def steps(text: str):  # type: ignore[no-untyped-def]
    return parse_stages("FROM bb\n" + text).stages[0].instructions


@pytest.mark.parametrize("line,flag", [
    ("RUN --mount=type=cache,target=/c true", "mount"),
    ("COPY --link a /b", "link"),
    ("ADD --link a /b", "link"),
    ("ADD --checksum=sha256:" + "0" * 64 + " a /b", "checksum"),
    ("ADD --keep-git-dir a /b", "keep-git-dir"),
])
def test_flags_that_need_buildkit(line: str, flag: str) -> None:
    [inst] = steps(line + "\n")
    with pytest.raises(InvalidArgument, match=f"^the --{flag} option requires BuildKit. "
                       "Refer to https://docs.docker.com/go/buildkit/ to learn how"):
        unsupported.check_step(inst)


@pytest.mark.parametrize("line,flag", [("COPY --exclude=*.md a /b", "--exclude"),
                                       ("ADD --exclude=*.md a /b", "--exclude"),
                                       ("COPY --parents a /b", "--parents")])
def test_flags_unknown_to_the_classic_parser(line: str, flag: str) -> None:
    dockerfile = parse_stages(f"FROM bb\nRUN true\n{line}\n")
    with pytest.raises(DockerfileParseError) as info:
        unsupported.check_parsed(dockerfile)
    assert info.value.message == f"dockerfile parse error on line 3: unknown flag: {flag}"


def test_supported_flags_pass() -> None:
    for inst in steps("RUN --network=none true\nCOPY --chmod=600 --chown=1:1 a /b\n"
                      "COPY --link=false --from=x a /b\nADD a /b\n"):
        unsupported.check_step(inst)
    unsupported.check_platform("linux/amd64")
    unsupported.check_platform("")
    with pytest.raises(InvalidArgument, match="only linux/amd64"):
        unsupported.check_platform("linux/arm64")


def test_removal_policy() -> None:
    assert Removal().removes(True) and not Removal().removes(False)
    assert not Removal(rm=False).removes(True)
    assert Removal(rm=False, force_rm=True).removes(False)


def test_missed_reasons(tmp_path: Path) -> None:
    cache = BuildCache(Database(tmp_path / "db"))
    first = StepKey("sha256:p", "RUN [\"echo\"]", extra=("V=1",))
    assert missed_reason(cache, first, "RUN") == ""
    assert missed_reason(cache, first, "RUN", diverged_at="step 2") == \
        "parent changed (step 2 missed)"
    cache.remember_step(first)
    assert missed_reason(cache, StepKey("sha256:p", "RUN [\"ls\"]"), "RUN") == \
        "RUN instruction changed"
    assert missed_reason(cache, StepKey("sha256:p", first.instruction, extra=("V=2",)),
                         "RUN") == "RUN build args changed: V"
    assert missed_reason(cache, first, "RUN", stale_hit="sha256:" + "a" * 64) == \
        "the cached image aaaaaaaaaaaa no longer exists"
    assert changed_args(("A=1", "B=2"), ("B=3", "C=")) == ["A", "B", "C"]
    cache.clear()
    assert cache.steps_from("sha256:p") == []


def test_auth_header_from_registry_config() -> None:
    entry = {"username": "u", "password": "p", "serveraddress": "127.0.0.1:5000"}
    config = base64.urlsafe_b64encode(json.dumps({"127.0.0.1:5000": entry}).encode()).decode()
    header = auth_header(config, "127.0.0.1:5000")
    assert json.loads(base64.urlsafe_b64decode(header)) == entry
    assert auth_header(config, "docker.io") == "" and auth_header("", "x") == ""
    assert auth_header("!!not base64!!", "x") == ""
