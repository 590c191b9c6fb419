"""Command-line handling: docker's flag semantics, usage errors and exit codes."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from dockyard.cli.app import execute, parse_globals
from dockyard.cli.context import Context
from dockyard.cli.refs import familiar_image, normalize_name, split_reference


def run_cli(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(host="unix:///nonexistent/dockyard-test.sock", env={},
                  stdin=io.StringIO(stdin), stdout=out, stderr=err,
                  config_dir=Path("/nonexistent"))
    code = execute(ctx, argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["ps", "--bar"], 125, ("unknown flag: --bar\n\nUsage:  dockyard ps [OPTIONS]\n\n"
                           "Run 'dockyard ps --help' for more information\n")),
    (["run", "-z", "bb"], 125, "unknown shorthand flag: 'z' in -z\n"),
    (["run", "--name"], 125, "flag needs an argument: --name\n"),
    (["run", "-e"], 125, "flag needs an argument: 'e' in -e\n"),
    (["run", "-m", "abc", "bb"], 125,
     "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'\n"),
    (["run", "--cpus", "x", "bb"], 125,
     'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number\n'),
    (["ps", "-n", "x"], 125, ('invalid argument "x" for "-n, --last" flag: strconv.ParseInt: '
                             'parsing "x": invalid syntax\n')),
    (["rm"], 1, ("dockyard: 'dockyard rm' requires at least 1 argument\n\n"
                "Usage:  dockyard rm [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                "See 'dockyard rm --help' for more information\n")),
    (["ps", "foo"], 1, "dockyard: 'dockyard ps' accepts no arguments\n"),
    (["rename", "a"], 1, "dockyard: 'dockyard rename' requires 2 arguments\n"),
    (["port"], 1, "requires at least 1 and at most 2 arguments"),
    (["images", "a", "b"], 1, "requires at most 1 argument"),
    (["frob"], 1, "dockyard: unknown command: dockyard frob\n"),
    (["container", "frob"], 1, "dockyard: unknown command: dockyard container frob\n"),
])
def test_usage_errors(argv: list[str], code: int, message: str) -> None:
    rc, out, err = run_cli(argv)
    assert rc == code
    assert message in err
    assert out == ""


def test_connection_failure_messages() -> None:
    rc, _, err = run_cli(["ps"])
    assert rc == 1
    assert err == ("Cannot connect to the dockyard daemon at "
                   "unix:///nonexistent/dockyard-test.sock. Is the dockyard daemon running?\n")
    rc, _, err = run_cli(["run", "bb"])
    assert rc == 125
    assert err.startswith("dockyard: Cannot connect to the dockyard daemon")
    assert err.endswith("\n\nRun 'dockyard run --help' for more information\n")


def test_help_and_groups() -> None:
    rc, out, _ = run_cli(["run", "--help"])
    assert rc == 0 and out.startswith("Usage:  dockyard run [OPTIONS] IMAGE [COMMAND] [ARG...]")
    assert "  -d, --detach " in out and "  -h, --hostname string " in out
    rc, out, _ = run_cli(["container"])
    assert rc == 0 and "  ls " in out and "  prune " in out
    rc, out, _ = run_cli(["image", "ls", "--help"])
    assert rc == 0 and out.startswith("Usage:  dockyard image ls")


def test_option_errors_of_run_exit_125_before_any_request() -> None:
    rc, _, err = run_cli(["run", "--rm", "--restart", "always", "bb"])
    assert rc == 125
    assert err.startswith("dockyard: conflicting options: cannot specify both --restart and --rm")


def test_global_options() -> None:
    opts, rest = parse_globals(["-H", "unix:///a.sock", "--tlsverify", "ps", "-a"])
    assert opts.hosts == ["unix:///a.sock"] and opts.tlsverify and rest == ["ps", "-a"]
    opts, rest = parse_globals(["--host=tcp://1.2.3.4:2375", "--config", "/c", "images"])
    assert opts.hosts == ["tcp://1.2.3.4:2375"] and opts.config == "/c" and rest == ["images"]


def test_references() -> None:
    assert split_reference("localhost:5000/a/b:1@sha256:x") == ("localhost:5000/a/b", "1",
                                                                "sha256:x")
    assert split_reference("bb") == ("bb", "", "")
    assert normalize_name("bb") == "docker.io/library/bb"
    assert normalize_name("foo/bar") == "docker.io/foo/bar"
    assert normalize_name("localhost:5000/x") == "localhost:5000/x"
    assert familiar_image("docker.io/library/bb:latest") == "bb:latest"
    assert familiar_image("docker.io/foo/bar@sha256:abc") == "foo/bar"
