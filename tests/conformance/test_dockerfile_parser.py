"""buildkit's Dockerfile parser and shell-word cases, run against our front end.

The data is ``../shared/conformance/dockerfile-parser`` (see its README): golden parse trees
(``testfiles``), files that must be rejected (``testfiles-negative``), line numbers
(``testfile-line``), single-word expansion (``shell/envVarTest``, the A and U lines) and
word splitting (``shell/wordsTest``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.builder.parser import parse, render
from dockyard.builder.shell import expand_word, expand_words
from dockyard.errors import InvalidArgument

DATA = Path(__file__).parents[3] / "shared/conformance/dockerfile-parser"
if not DATA.is_dir():
    pytest.skip(f"no conformance data at {DATA}", allow_module_level=True)

SHELL_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")   # bytes as they are: no newline translation


def _cases(folder: str) -> list[str]:
    return sorted(p.name for p in (DATA / folder).iterdir() if p.is_dir())


def _env_var_cases() -> list[tuple[int, str, str]]:
    cases = []
    lines = _read(DATA / "shell/envVarTest").split("\n")
    for number, line in enumerate(lines, 1):
        if line.startswith("#") or not line.strip():
            continue
        platform, source, expected = (field.strip() for field in line.split("|"))
        if platform in ("A", "U"):
            cases.append((number, source, expected))
    return cases


def _words_cases() -> list[tuple[int, str, list[str], dict[str, str]]]:
    cases = []
    env: dict[str, str] = {}
    lines = _read(DATA / "shell/wordsTest").split("\n")
    for number, line in enumerate(lines, 1):
        if line.startswith("#") or not line:
            continue
        if line.startswith("ENV "):
            name, _, value = line[3:].lstrip(" ").partition("=")
            env[name] = value
            continue
        source, expected = line.split("|")
        cases.append((number, source.strip(), expected.lstrip(" ").split(","), dict(env)))
    return cases


ENV_VAR_CASES = _env_var_cases()
WORDS_CASES = _words_cases()


def test_every_case_is_collected() -> None:
    assert len(_cases("testfiles")) == 33
    assert len(_cases("testfiles-negative")) == 4
    assert len(ENV_VAR_CASES) == 228
    assert sum(expected == "error" for _, _, expected in ENV_VAR_CASES) == 36
    assert len(WORDS_CASES) == 24


@pytest.mark.parametrize("case", _cases("testfiles"))
def test_parse_tree_matches_golden_result(case: str) -> None:
    tree = parse(_read(DATA / "testfiles" / case / "Dockerfile"))
    assert render(tree) + "\n" == _read(DATA / "testfiles" / case / "result")


@pytest.mark.parametrize("case", _cases("testfiles-negative"))
def test_invalid_dockerfile_is_rejected(case: str) -> None:
    with pytest.raises(InvalidArgument):
        parse(_read(DATA / "testfiles-negative" / case / "Dockerfile"))


def test_negative_cases_give_dockers_messages() -> None:
    def message(case: str) -> str:
        with pytest.raises(InvalidArgument) as info:
            parse(_read(DATA / "testfiles-negative" / case / "Dockerfile"))
        return str(info.value)

    assert message("empty_dockerfile") == "file with no instructions"
    assert message("only_comments") == "file with no instructions"
    assert message("env_no_value") == ("dockerfile parse error on line 3: "
                                       "ENV must have two arguments")
    assert message("shykes-nested-json").endswith(
        "when using JSON array syntax, arrays must be comprised of strings only")


def test_line_numbers() -> None:
    tree = parse(_read(DATA / "testfile-line/Dockerfile"))
    assert (tree.start_line, tree.end_line) == (5, 31)
    spans = [(node.start_line, node.end_line) for node in tree.children]
    assert spans == [(5, 5), (11, 12), (17, 31)]


@pytest.mark.parametrize(("line", "source", "expected"), ENV_VAR_CASES,
                         ids=[f"line{case[0]}" for case in ENV_VAR_CASES])
def test_expand_word(line: int, source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(InvalidArgument):
            expand_word(source, SHELL_ENV)
    else:
        assert expand_word(source, SHELL_ENV) == expected


@pytest.mark.parametrize(("line", "source", "expected", "env"), WORDS_CASES,
                         ids=[f"line{case[0]}" for case in WORDS_CASES])
def test_expand_words(line: int, source: str, expected: list[str],
                      env: dict[str, str]) -> None:
    if expected == ["error"]:
        with pytest.raises(InvalidArgument):
            expand_words(source, env)
    else:
        assert expand_words(source, env) == expected
