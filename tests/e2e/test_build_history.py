"""What the classic builder leaves in ``docker history`` for every instruction, byte for byte,
and the steps behind it: ARG commits an image like any metadata step, WORKDIR makes its
directory in the step's layer.

The expected texts are Docker's (moby ``builder/dockerfile``): ``<shell> #(nop)  <comment>``
(two spaces) for commits, ``<shell> #(nop) <comment>`` for WORKDIR, COPY and ADD, Go's ``%q``
for CMD/ENTRYPOINT/HEALTHCHECK and ``%v`` for VOLUME/SHELL, ``|N k=v`` before a RUN that
sees build args. Only COPY/ADD's content hashes are matched by pattern (ours are our own).

The autouse ``cleanup`` fixture (from test_build_more) removes what each test made.
"""
from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_build import build, ctx, ok_build, run, tag  # noqa: F401  (fixtures)
from tests.e2e.test_build_more import _ids, cleanup, inspect  # noqa: F401  (fixture)

EVERY_INSTRUCTION = """\
FROM bb
MAINTAINER Jane Doe <jane@example.org>
ARG WHO=world
ARG A=1 B
ENV GREETING="hello there" NAME=$WHO
LABEL org.example.a=1 "b"="two words"
WORKDIR /srv
WORKDIR app
RUN echo $WHO > /who
RUN ["sh", "-c", "echo exec"]
USER 65534
EXPOSE 8080 53/udp 7000-7001
VOLUME /data /logs
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --retries=3 CMD true
HEALTHCHECK --interval=1m30s --timeout=3s CMD ["true"]
SHELL ["/bin/sh", "-ec"]
RUN echo after-shell
ONBUILD RUN echo triggered
COPY file /f
COPY --chown=65534:65534 file dir/ /multi/
ADD file /added
USER root
CMD ["echo", "done"]
ENTRYPOINT echo entry
CMD shell form
"""

H = "[0-9a-f]{64}"
ARGS = "|3 A=1 B=2 WHO=dockyard "
# newest first, as docker history prints them
EXPECTED = [
    '/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "shell form"]',
    '/bin/sh -ec #(nop)  ENTRYPOINT ["/bin/sh" "-ec" "echo entry"]',
    '/bin/sh -ec #(nop)  CMD ["echo" "done"]',
    "/bin/sh -ec #(nop)  USER root",
    re.compile(rf"/bin/sh -ec #\(nop\) ADD file:{H} in /added "),
    re.compile(rf"/bin/sh -ec #\(nop\) COPY --chown=65534:65534multi:{H} in /multi/ "),
    re.compile(rf"/bin/sh -ec #\(nop\) COPY file:{H} in /f "),
    "/bin/sh -ec #(nop)  ONBUILD RUN echo triggered",
    ARGS + "/bin/sh -ec echo after-shell",
    "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
    '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "true"] "1m30s" "3s" "0s" "0s" \'\\x00\'}',
    '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" \'\\x03\'}',
    "/bin/sh -c #(nop)  STOPSIGNAL SIGUSR1",
    "/bin/sh -c #(nop)  VOLUME [/data /logs]",
    "/bin/sh -c #(nop)  EXPOSE 53/udp 7000-7001 8080",
    "/bin/sh -c #(nop)  USER 65534",
    ARGS + "sh -c echo exec",
    ARGS + "/bin/sh -c echo $WHO > /who",
    "/bin/sh -c #(nop) WORKDIR /srv/app",
    "/bin/sh -c #(nop) WORKDIR /srv",
    "/bin/sh -c #(nop)  LABEL org.example.a=1 b=two words",
    "/bin/sh -c #(nop)  ENV GREETING=hello there NAME=dockyard",
    "/bin/sh -c #(nop)  ARG A=1 B",
    "/bin/sh -c #(nop)  ARG WHO=world",
    "/bin/sh -c #(nop)  MAINTAINER Jane Doe <jane@example.org>",
]


def history(daemon: DaemonProcess, name: str, field: str = "CreatedBy") -> list[str]:
    out = daemon.docker("history", "--no-trunc", "--format", "{{." + field + "}}", name)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().splitlines()


def matches(line: str, expected: str | re.Pattern[str]) -> bool:
    return line == expected if isinstance(expected, str) else bool(expected.fullmatch(line))


def steps(text: str) -> list[list[str]]:
    """Each ``Step n/m`` line with the `` ---> `` lines after it."""
    out: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("Step "):
            out.append([line])
        elif line.startswith(" ---> ") and out:
            out[-1].append(line)
    return out


def test_history_of_every_instruction_is_dockers(daemon: DaemonProcess, ctx: Path,
                                                 tag: str) -> None:
    (ctx / "file").write_text("one\n")
    (ctx / "dir").mkdir()
    (ctx / "dir" / "inner").write_text("two\n")
    (ctx / "Dockerfile").write_text(EVERY_INSTRUCTION)
    args = ("--build-arg", "WHO=dockyard", "--build-arg", "B=2", "-t", tag)
    text = ok_build(daemon, ctx, *args)
    assert "Note: overriding previous HEALTHCHECK: [CMD-SHELL true]\n" in text, text
    lines = history(daemon, tag)
    base = history(daemon, "bb")
    assert lines[len(EXPECTED):] == base
    got = lines[:len(EXPECTED)]
    wrong = [(g, e) for g, e in zip(got, EXPECTED) if not matches(g, e)]
    assert not wrong and len(got) == len(EXPECTED), "\n".join(f"{g!r}\n  != {e!r}"
                                                              for g, e in wrong)
    # metadata steps, ARG included, are 0B rows; the RUNs that wrote files are not
    sizes = dict(zip(got, history(daemon, tag, "Size")))
    assert sizes["/bin/sh -c #(nop)  ARG A=1 B"] == "0B"
    assert sizes["/bin/sh -c #(nop)  ENV GREETING=hello there NAME=dockyard"] == "0B"
    assert sizes[ARGS + "/bin/sh -c echo $WHO > /who"] != "0B"
    # the image works as built: the ARG reached RUN, the config is as Docker sets it
    config = inspect(daemon, tag)["Config"]
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp", "7000/tcp", "7001/tcp"}
    assert config["Volumes"] == {"/data": {}, "/logs": {}}
    assert run(daemon, "--entrypoint", "cat", tag, "/who", "/multi/inner") == \
        "dockyard\ntwo\n"
    # every step is a step: ARG lines (one step for ``ARG A=1 B``) are committed and cached
    cached = ok_build(daemon, ctx, *args)
    per_step = steps(cached)
    assert len(per_step) == 26 and per_step[0][0] == "Step 1/26 : FROM bb", cached
    for step in per_step[1:]:
        assert step[1] == " ---> Using cache" and re.fullmatch(r" ---> [0-9a-f]{12}", step[2]), \
            step
    assert [s[0] for s in per_step[2:4]] == ["Step 3/26 : ARG WHO=world",
                                             "Step 4/26 : ARG A=1 B"]
    assert history(daemon, tag)[:len(EXPECTED)] == got


def test_arg_step_output_and_cache(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text("FROM bb\nARG V=1\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n")
    first = ok_build(daemon, ctx, "--no-cache", "-t", tag)
    arg_step = steps(first)[1]
    assert arg_step[0] == "Step 2/4 : ARG V=1"
    cid = arg_step[1].removeprefix(" ---> Running in ")
    assert re.fullmatch("[0-9a-f]{12}", cid), arg_step
    assert arg_step[2:] == [f" ---> Removed intermediate container {cid}", arg_step[3]]
    assert re.fullmatch(r" ---> [0-9a-f]{12}", arg_step[3])
    assert history(daemon, tag)[:3] == ['/bin/sh -c #(nop)  CMD ["cat" "/v"]',
                                        "|1 V=1 /bin/sh -c echo $V > /v",
                                        "/bin/sh -c #(nop)  ARG V=1"]
    # another --build-arg value: the ARG step (its default did not change) stays cached,
    # the RUN that sees the value misses
    other = ok_build(daemon, ctx, "--build-arg", "V=2", "-t", tag)
    assert steps(other)[1][1] == " ---> Using cache", other
    assert " ---> cache miss: RUN build args changed: V" in other
    assert history(daemon, tag)[1:3] == ["|1 V=2 /bin/sh -c echo $V > /v",
                                         "/bin/sh -c #(nop)  ARG V=1"]
    assert run(daemon, tag) == "2\n"
    # a changed default changes the ARG step itself
    (ctx / "Dockerfile").write_text("FROM bb\nARG V=3\nRUN echo $V > /v\nCMD [\"cat\", \"/v\"]\n")
    changed = ok_build(daemon, ctx, "-t", tag)
    assert steps(changed)[1][1] != " ---> Using cache"
    assert run(daemon, tag) == "3\n"


def test_label_option_is_a_step(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text("FROM bb\nCMD [\"true\"]\n")
    text = ok_build(daemon, ctx, "--label", "z=last", "--label", "a=b c", "-t", tag)
    assert "Step 3/3 : LABEL \"a\"='b c' \"z\"='last'\n" in text, text
    assert history(daemon, tag)[0] == "/bin/sh -c #(nop)  LABEL a=b c z=last"
    assert inspect(daemon, tag)["Config"]["Labels"] == {"a": "b c", "z": "last"}


def test_workdir_creates_its_directory_in_the_layer(daemon: DaemonProcess, ctx: Path,
                                                     tag: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM bb\n"
        "RUN ln -s /real /link && mkdir /existing && touch /afile\n"
        "WORKDIR /new/deeper\n"      # new: the layer holds /new and /new/deeper
        "WORKDIR /existing\n"        # already there: no layer
        "WORKDIR /link/inside\n"     # through a symlink: made under /real
        "USER 65534\n"
        "WORKDIR /by-root\n"         # made as root, whatever USER says
        "CMD [\"pwd\"]\n")
    before = _ids(daemon, "ps", "-aq", "--no-trunc")
    text = ok_build(daemon, ctx, "--no-cache", "--rm=false", "-t", tag)
    kept = _ids(daemon, "ps", "-aq", "--no-trunc") - before
    by_step = {s[0].split(" : ", 1)[1]: s for s in steps(text)}

    def container_of(step: str) -> str:
        """The kept container a step was committed from (``Running in <id>``)."""
        assert by_step[step][1].startswith(" ---> Running in "), by_step[step]
        short = by_step[step][1].removeprefix(" ---> Running in ")
        return next(c for c in kept if c.startswith(short))
    # as Docker: the step's container holds the new directories (docker diff shows them)
    diff = daemon.docker("diff", container_of("WORKDIR /new/deeper")).stdout.decode()
    assert diff.splitlines() == ["A /new", "A /new/deeper"], diff
    assert daemon.docker("diff", container_of("WORKDIR /existing")).stdout.decode() == ""
    diff = daemon.docker("diff", container_of("WORKDIR /by-root")).stdout.decode()
    assert diff.splitlines() == ["A /by-root"], diff
    # one layer for the RUN and each new directory; none for the existing one
    image = inspect(daemon, tag)
    base_layers = len(inspect(daemon, "bb")["RootFS"]["Layers"])
    assert len(image["RootFS"]["Layers"]) == base_layers + 4
    rows = dict(zip(history(daemon, tag), history(daemon, tag, "Size")))
    assert rows["/bin/sh -c #(nop) WORKDIR /existing"] == "0B"
    assert rows["/bin/sh -c #(nop) WORKDIR /new/deeper"] == "0B"   # directories weigh 0B
    assert run(daemon, tag) == "/by-root\n"
    out = run(daemon, "--entrypoint", "sh", tag, "-c",
              "stat -c '%a %u:%g %n' /new /new/deeper /real/inside /by-root; ls -ld /link")
    lines = out.splitlines()
    assert lines[:4] == ["755 0:0 /new", "755 0:0 /new/deeper", "755 0:0 /real/inside",
                         "755 0:0 /by-root"], out
    assert lines[4].startswith("l") and lines[4].endswith("/link -> /real"), out
    # a file in the way: Docker's error, and no image is tagged
    (ctx / "Dockerfile").write_text("FROM bb\nRUN touch /afile\nWORKDIR /afile\n")
    code, text = build(daemon, ctx, "-t", tag + "-bad")
    assert code == 1 and "Cannot mkdir: /afile is not a directory" in text, text
    assert daemon.docker("image", "inspect", tag + "-bad").returncode != 0


def test_workdir_on_scratch(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text("FROM scratch\nWORKDIR /app\nCOPY Dockerfile .\n")
    ok_build(daemon, ctx, "-t", tag)
    image = inspect(daemon, tag)
    assert len(image["RootFS"]["Layers"]) == 2 and image["Config"]["WorkingDir"] == "/app"
    out = daemon.docker("create", "--name", tag.replace(":", "-"), tag, "x")
    assert out.returncode == 0, out.stderr
    listing = daemon.docker("export", tag.replace(":", "-")).stdout
    names = tarfile.open(fileobj=io.BytesIO(listing)).getnames()
    assert "app" in names and "app/Dockerfile" in names, names
