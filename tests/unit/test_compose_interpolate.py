from __future__ import annotations

import pytest

from dockyard.compose import InterpolationError, interpolate, interpolate_string
from dockyard.compose.envfile import parse_env_text

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(("text", "expected"), [
    ("$SET", "value"), ("${SET}", "value"), ("pre-${SET}-post", "pre-value-post"),
    ("$$SET", "$SET"), ("$$", "$"), ("a $ b", "a $ b"),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${SET:-d}", "value"),
    ("${UNSET-d}", "d"), ("${EMPTY-d}", ""),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("${SET?err}", "value"), ("${EMPTY?err}", ""),
    ("${UNSET:-${SET}}", "value"), ("${UNSET:-${ALSO:-deep}}", "deep"),
    ("${UNSET}", ""), ("$SET.x", "value.x"),
])
def test_forms(text: str, expected: str) -> None:
    assert interpolate_string(text, ENV) == expected


def test_unset_warns() -> None:
    seen: list[str] = []
    assert interpolate_string("${NOPE}", ENV, warn=seen.append) == ""
    assert "NOPE" in seen[0]


@pytest.mark.parametrize("text", ["${UNSET:?need it}", "${EMPTY:?need it}", "${UNSET?need it}"])
def test_required_missing(text: str) -> None:
    with pytest.raises(InterpolationError, match="required variable (UNSET|EMPTY) is missing "
                                                 "a value: need it"):
        interpolate_string(text, ENV)


def test_error_names_file_service_and_key() -> None:
    doc = {"services": {"web": {"image": "${IMG:?set IMG}"}}}
    with pytest.raises(InterpolationError) as e:
        interpolate(doc, {}, source="compose.yaml")
    assert str(e.value) == ("compose.yaml: services.web.image: required variable IMG is "
                            "missing a value: set IMG")


@pytest.mark.parametrize("text", ["${", "${}", "${1A}", "${A:x}"])
def test_invalid_format(text: str) -> None:
    with pytest.raises(InterpolationError, match="invalid interpolation format"):
        interpolate_string(text, ENV)


def test_tree_keeps_non_strings_and_keys() -> None:
    doc = {"a": [1, True, None, "$SET"], "$SET": {"b": "${SET}"}}
    assert interpolate(doc, ENV) == {"a": [1, True, None, "value"], "$SET": {"b": "value"}}


def test_env_file_syntax() -> None:
    text = """
# comment
A=1
export B = two
C="quoted # not comment"
D='single $A'
E=$A-${B}
F=x # trailing comment
G
H=
I="multi
line"
"""
    env = parse_env_text(text, lookup={"G": "from-os"})
    assert env == {"A": "1", "B": "two", "C": "quoted # not comment", "D": "single $A",
                   "E": "1-two", "F": "x", "G": "from-os", "H": "", "I": "multi\nline"}
