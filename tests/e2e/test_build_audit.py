"""``docker build`` through the real docker CLI: intermediate containers of every kind of step,
and the instructions, directives and options the other build tests do not reach (checked in
as few builds as possible).

The autouse ``cleanup`` fixture (from test_build_more) removes what each test made.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_build import build, ctx, ok_build, run, tag  # noqa: F401  (fixtures)
from tests.e2e.test_build_more import _ids, cleanup, inspect  # noqa: F401  (fixture)


def running_in(text: str) -> list[str]:
    return [line.split()[-1] for line in text.splitlines() if "---> Running in " in line]


def step_of(text: str, cid: str) -> str:
    """The ``Step n/m : ...`` line a container was announced under."""
    step = ""
    for line in text.splitlines():
        if line.startswith("Step "):
            step = line
        elif line == f" ---> Running in {cid}":
            return step
    raise AssertionError(f"{cid} not announced in {text}")


def layer_mounts(daemon: DaemonProcess) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines()
            if str(daemon.base) in line and "build-layer-" in line]


# -- intermediate containers: every step that makes one follows --rm / --force-rm ----------
def test_intermediate_containers_of_every_step(daemon: DaemonProcess, ctx: Path,
                                               tag: str) -> None:
    (ctx / "file").write_text("copied\n")
    unique = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(f"FROM bb\nENV U={unique}\nRUN echo $U > /u\n"
                                    "COPY file /f\nADD file /g\nCMD [\"cat\", \"/u\"]\n")
    before = _ids(daemon, "ps", "-aq", "--no-trunc")
    text = ok_build(daemon, ctx, "--rm=false", "-t", tag)
    kept = _ids(daemon, "ps", "-aq", "--no-trunc") - before
    # as the classic builder: ENV, RUN and CMD run in containers; COPY and ADD write into a
    # bare layer and make none
    steps = [step_of(text, cid).split(" : ")[1].split()[0] for cid in running_in(text)]
    assert steps == ["ENV", "RUN", "CMD"], text
    assert {cid[:12] for cid in kept} == set(running_in(text))
    assert "intermediate container" not in text
    states = {cid[:12]: daemon.docker("inspect", "--format", "{{.State.Status}}", cid)
              .stdout.decode().strip() for cid in kept}
    env_cid, run_cid, cmd_cid = running_in(text)
    assert (states[env_cid], states[run_cid], states[cmd_cid]) == \
        ("created", "exited", "created")
    assert run(daemon, tag) == unique + "\n"
    daemon.docker("rm", "-f", *sorted(kept))

    text = ok_build(daemon, ctx, "--no-cache", "-t", tag)  # --rm, the default
    assert len(running_in(text)) == 3
    for cid in running_in(text):
        assert f" ---> Removed intermediate container {cid}" in text
    assert _ids(daemon, "ps", "-aq", "--no-trunc") == before

    # a failing RUN after ENV and COPY: --rm keeps only the failed step's container,
    # --force-rm removes every one
    (ctx / "Dockerfile").write_text(f"FROM bb\nENV U={unique}\nCOPY file /f\nRUN exit 5\n")
    code, text = build(daemon, ctx, "--no-cache")
    kept = _ids(daemon, "ps", "-aq", "--no-trunc") - before
    assert code == 5, text
    env_cid, run_cid = running_in(text)
    assert f"Removed intermediate container {env_cid}" in text
    assert {cid[:12] for cid in kept} == {run_cid}
    daemon.docker("rm", "-f", *sorted(kept))
    code, text = build(daemon, ctx, "--no-cache", "--force-rm")
    assert code == 5 and text.count("Removed intermediate container") == 2, text
    assert _ids(daemon, "ps", "-aq", "--no-trunc") == before
    assert not layer_mounts(daemon)
    # a failing COPY (a missing source) leaves no container and no mount either
    (ctx / "Dockerfile").write_text("FROM bb\nCOPY missing /m\n")
    for flags in ((), ("--rm=false",), ("--force-rm",)):
        code, text = build(daemon, ctx, *flags)
        assert code == 1 and "missing" in text and not running_in(text), text
        assert _ids(daemon, "ps", "-aq", "--no-trunc") == before
    assert not layer_mounts(daemon)


# -- instructions and directives ----------------------------------------------------------
def test_instruction_audit(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\n"
        "FROM bb\n"
        "MAINTAINER Jane Doe <jane@example.org>\n"
        "ARG WHO=world\n"
        "USER nobody\n"
        "WORKDIR /tmp/work\n"
        "RUN id -u > /tmp/uid && pwd > /tmp/pwd\n"
        "USER root\n"
        "SHELL [\"/bin/env\", \"VIA_SHELL=yes\", \"/bin/sh\", \"-c\"]\n"
        "RUN echo $VIA_SHELL > /via-shell\n"
        "CMD echo shell-form\n"
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=4 CMD [\"true\"]\n"
        "COPY <<EOF /greeting\n"
        "hello $WHO \"quoted\"\n"
        "EOF\n"
        "COPY --chmod=600 <<'RAW' /raw\n"
        "not $EXPANDED\n"
        "RAW\n"
        "COPY --chown=nobody:nogroup <<-TABS <<two /docs/\n"
        "\tindented\n"
        "\tTABS\n"
        "second\n"
        "two\n")
    text = ok_build(daemon, ctx, "--build-arg", "WHO=dockyard", "-t", tag, "-t", tag + "-b",
                    "--label", "via=cli")
    assert f"Successfully tagged {tag}\n" in text and f"Successfully tagged {tag}-b\n" in text
    assert inspect(daemon, tag)["Id"] == inspect(daemon, tag + "-b")["Id"]
    image = inspect(daemon, tag)
    config = image["Config"]
    assert image["Author"] == "Jane Doe <jane@example.org>"  # also on --label's last step
    assert config["Labels"] == {"via": "cli"}
    assert config["Cmd"] == ["/bin/env", "VIA_SHELL=yes", "/bin/sh", "-c", "echo shell-form"]
    assert config["Shell"] == ["/bin/env", "VIA_SHELL=yes", "/bin/sh", "-c"]
    assert config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000,
                                     "Timeout": 3_000_000_000, "StartPeriod": 2_000_000_000,
                                     "Retries": 4}
    assert config["WorkingDir"] == "/tmp/work" and config["User"] == "root"
    out = run(daemon, "--entrypoint", "sh", tag, "-c",
              "cat /tmp/uid /tmp/pwd /via-shell /greeting /raw /docs/TABS /docs/two; "
              "stat -c '%a %u:%g %n' /raw /docs/TABS")
    assert out == ("65534\n/tmp/work\nyes\nhello dockyard \"quoted\"\nnot $EXPANDED\n"
                   "indented\nsecond\n600 0:0 /raw\n644 65534:65534 /docs/TABS\n"), out
    history = daemon.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag)
    assert "MAINTAINER Jane Doe" in history.stdout.decode()
    # the heredoc's content is part of the cache key: change it, the step misses
    cached = ok_build(daemon, ctx, "--build-arg", "WHO=dockyard", "-t", tag, "--label", "via=cli")
    # (--label is one more step: 15 with it, 14 without)
    assert "Step 12/15 : COPY <<EOF /greeting\n ---> Using cache" in cached, cached
    again = ok_build(daemon, ctx, "--build-arg", "WHO=other", "-t", tag)
    assert "Step 12/14 : COPY <<EOF /greeting\n" in again, again
    assert "Step 12/14 : COPY <<EOF /greeting\n ---> Using cache" not in again, again
    assert run(daemon, "--entrypoint", "cat", tag, "/greeting") == "hello other \"quoted\"\n"
    config_json = json.dumps(inspect(daemon, tag)["Config"])
    assert "dockyard" not in config_json  # ARG values are not kept in the image config
