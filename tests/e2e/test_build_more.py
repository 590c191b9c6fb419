"""More of ``docker build``: -f, stdin contexts, options, directives, bad contexts, docker-py.

Every test here removes the images and containers it made (the autouse ``cleanup`` fixture
compares the daemon's images and containers before and after).
"""
from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.api.test_bad_input import call
from tests.e2e.test_build import build, ctx, ok_build, run, tag  # noqa: F401  (fixtures)


def _ids(daemon: DaemonProcess, *args: str) -> set[str]:
    out = daemon.docker(*args)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.decode().split())


@pytest.fixture(autouse=True)
def cleanup(daemon: DaemonProcess) -> Iterator[None]:
    images = _ids(daemon, "images", "-aq", "--no-trunc")
    tags = _ids(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}")
    containers = _ids(daemon, "ps", "-aq", "--no-trunc")
    yield
    new_containers = _ids(daemon, "ps", "-aq", "--no-trunc") - containers
    if new_containers:
        daemon.docker("rm", "-f", *sorted(new_containers))
    new_tags = _ids(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}") - tags
    if new_tags:
        daemon.docker("rmi", *sorted(new_tags))
    for _ in range(10):  # children first: retry until nothing new is left
        left = _ids(daemon, "images", "-aq", "--no-trunc") - images
        if not left:
            break
        for image in sorted(left):
            daemon.docker("rmi", image)
    assert not _ids(daemon, "images", "-aq", "--no-trunc") - images
    assert not _ids(daemon, "ps", "-aq", "--no-trunc") - containers


def inspect(daemon: DaemonProcess, name: str) -> dict:  # type: ignore[type-arg]
    out = daemon.docker("image", "inspect", name)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout)[0])


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# -- -f and stdin ----------------------------------------------------------------------------
def test_f_other_name_and_subdirectory(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text("FROM bb\nRUN echo wrong-dockerfile && exit 9\n")
    (ctx / "other.Dockerfile").write_text("FROM bb\nRUN echo other > /which\n")
    (ctx / "sub" / "deeper").mkdir(parents=True)
    (ctx / "sub" / "deeper" / "Dockerfile.dev").write_text("FROM bb\nCOPY top.txt /which\n")
    (ctx / "top.txt").write_text("subdir dockerfile, context root\n")
    text = ok_build(daemon, ctx, "-f", str(ctx / "other.Dockerfile"), "-t", tag)
    assert "wrong-dockerfile" not in text
    assert run(daemon, tag, "cat", "/which") == "other\n"
    ok_build(daemon, ctx, "-f", str(ctx / "sub" / "deeper" / "Dockerfile.dev"), "-t", tag)
    assert run(daemon, tag, "cat", "/which") == "subdir dockerfile, context root\n"
    outside = ctx.parent / f"outside-{uuid.uuid4().hex[:6]}.Dockerfile"
    outside.write_text("FROM bb\nCOPY top.txt /which\n")
    try:  # the CLI sends a Dockerfile from outside the context as a hidden member
        ok_build(daemon, ctx, "-f", str(outside), "-t", tag)
    finally:
        outside.unlink()
    assert run(daemon, tag, "cat", "/which") == "subdir dockerfile, context root\n"
    code, text = build(daemon, ctx, "-f", str(ctx / "nosuch.Dockerfile"))
    assert code != 0 and "nosuch.Dockerfile" in text


def test_context_from_stdin(daemon: DaemonProcess, tag: str) -> None:
    out = daemon.docker("build", "-t", tag, "-", input=b"FROM bb\nRUN echo stdin > /s\n",
                        timeout=120)
    assert out.returncode == 0, out.stderr
    assert run(daemon, tag, "cat", "/s") == "stdin\n"
    out = daemon.docker("build", "-t", tag, "-", input=b"FROM bb\nCOPY f /f\n", timeout=120)
    assert out.returncode != 0  # no context: nothing to COPY
    assert b"COPY failed: file not found in build context or excluded by .dockerignore: " \
        b"stat f: file does not exist" in out.stderr, out.stderr
    context = tar_bytes({"Dockerfile": b"FROM bb\nCOPY data/f /f\n", "data/f": b"from tar\n"})
    out = daemon.docker("build", "-t", tag, "-", input=context, timeout=120)
    assert out.returncode == 0, out.stderr
    assert run(daemon, tag, "cat", "/f") == "from tar\n"


# -- options ---------------------------------------------------------------------------------
def test_label_and_quiet(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text("FROM bb\nLABEL from.file=1\nRUN echo q > /q\n")
    ok_build(daemon, ctx, "--label", "k=v", "--label", "from.file=cli", "-t", tag)
    labels = inspect(daemon, tag)["Config"]["Labels"]
    assert labels == {"k": "v", "from.file": "cli"}
    out = daemon.docker("build", "-q", "--label", "k=v", "-t", tag, str(ctx), timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0] == inspect(daemon, tag)["Id"], out.stdout
    assert lines[0].startswith("sha256:") and len(lines[0]) == 71


def test_network_none_and_memory_for_run(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    script = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort > /nets"
    (ctx / "Dockerfile").write_text(f"FROM bb\nRUN {script}\n")
    ok_build(daemon, ctx, "--network", "none", "-t", tag)
    assert run(daemon, tag, "cat", "/nets") == "lo\n"
    ok_build(daemon, ctx, "--no-cache", "-t", tag)  # the default network has an interface more
    assert run(daemon, tag, "cat", "/nets") != "lo\n"
    (ctx / "Dockerfile").write_text(
        "FROM bb\nRUN (cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null ||"
        " cat /sys/fs/cgroup/memory.max) > /limit\n")
    ok_build(daemon, ctx, "--memory", "64m", "-t", tag)
    assert run(daemon, tag, "cat", "/limit") == f"{64 << 20}\n"


# -- directives and instructions -------------------------------------------------------------
def test_escape_directive(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text(
        "# escape=`\n"
        "FROM bb\n"
        "ENV WIN=C:\\tools\\bin\n"
        "RUN echo one `\n"
        "    two > /joined\n"
        "LABEL path=\"a\\b\"\n")
    ok_build(daemon, ctx, "-t", tag)
    config = inspect(daemon, tag)["Config"]
    assert "WIN=C:\\tools\\bin" in config["Env"] and config["Labels"] == {"path": "a\\b"}
    assert run(daemon, tag, "cat", "/joined") == "one two\n"


def test_add_chown_and_url(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "file").write_text("owned\n")
    (ctx / "dir").mkdir()
    (ctx / "dir" / "inner").write_text("inner\n")
    (ctx / "Dockerfile").write_text("FROM bb\nADD --chown=1:2 file /f\n"
                                    "ADD --chown=1:2 dir /d/\n")
    ok_build(daemon, ctx, "-t", tag)
    assert run(daemon, tag, "stat", "-c", "%u:%g %n", "/f", "/d", "/d/inner") == \
        "1:2 /f\n1:2 /d\n1:2 /d/inner\n"
    images_before = _ids(daemon, "images", "-aq")
    (ctx / "Dockerfile").write_text("FROM bb\nADD http://example.invalid/x.txt /x\n")
    code, text = build(daemon, ctx, "-t", tag + "url")
    assert code == 1 and "ADD from a URL is not supported: no network access" in text, text
    assert _ids(daemon, "images", "-aq") == images_before


def test_onbuild_triggers_run_in_child(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "file").write_text("child context\n")
    (ctx / "Dockerfile").write_text("FROM bb\nONBUILD RUN echo triggered > /t\n"
                                    "ONBUILD COPY file /from-child\n")
    parent_text = ok_build(daemon, ctx, "-t", tag)
    assert "triggered" not in parent_text.replace("ONBUILD RUN echo triggered", "")
    child = tag.replace(":1", "-child:1")
    (ctx / "Dockerfile").write_text(f"FROM {tag}\nRUN cat /t\n")
    text = ok_build(daemon, ctx, "-t", child)
    lines = text.splitlines()
    assert lines[lines.index("Step 1/2 : FROM " + tag) + 2] == "# Executing 2 build triggers"
    assert run(daemon, child, "cat", "/t", "/from-child") == "triggered\nchild context\n"
    assert not inspect(daemon, child)["Config"].get("OnBuild")  # triggers are not inherited


def test_dockerignore_exceptions_and_double_star(daemon: DaemonProcess, ctx: Path,
                                                 tag: str) -> None:
    files = ["a.log", "sub/deep/b.log", "keep/important.log", "keep/other.log",
             "docs/x.txt", "docs/README.md", "src/main.c", "src/tmp/scratch.o"]
    for name in files:
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(name + "\n")
    (ctx / ".dockerignore").write_text("# comment\n**/*.log\n!keep/important.log\n"
                                       "docs\n!docs/README.md\nsrc/**/*.o\n")
    (ctx / "Dockerfile").write_text("FROM bb\nCOPY . /ctx/\n")
    ok_build(daemon, ctx, "-t", tag)
    listing = run(daemon, tag, "sh", "-c", "cd /ctx && find . -type f | sort")
    assert listing.split() == ["./.dockerignore", "./Dockerfile", "./docs/README.md",
                               "./keep/important.log", "./src/main.c"]


# -- bad contexts over the raw API -----------------------------------------------------------
def _build_raw(daemon: DaemonProcess, body: bytes, tag: str) -> tuple[int, str]:
    status, data = call(daemon, "POST", f"/v1.50/build?t={tag}", body,
                        {"Content-Type": "application/x-tar"})
    return status, data.decode(errors="replace")


def _error(text: str) -> str:
    """The ``error`` of the last JSON message of a build stream."""
    return str(json.loads(text.strip().splitlines()[-1])["error"])


def test_context_with_path_traversal(daemon: DaemonProcess, tag: str, tmp_path: Path) -> None:
    images_before = _ids(daemon, "images", "-aq")
    buffer = io.BytesIO()
    target = f"../../../../../../{str(tmp_path).lstrip('/')}/climbed.txt"
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM bb\nCOPY . /\n"), ("../x", b"x"),
                           (target, b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    status, text = _build_raw(daemon, buffer.getvalue(), tag)
    assert status == 200 and "Successfully built" not in text, (status, text)
    assert _error(text) == 'invalid tar entry "../x": path escapes the destination', text
    assert not (tmp_path / "climbed.txt").exists()
    assert _ids(daemon, "images", "-aq") == images_before
    assert call(daemon, "GET", f"/v1.50/images/{tag}/json")[0] == 404
    assert daemon.docker("version").returncode == 0


def test_context_with_absolute_symlink(daemon: DaemonProcess, tag: str,
                                       tmp_path: Path) -> None:
    images_before = _ids(daemon, "images", "-aq")
    (tmp_path / "host.txt").write_text("host secret\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dockerfile = b"FROM bb\nRUN true\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(link)
        through = tarfile.TarInfo("escape/pwned.txt")
        through.size = 1
        tar.addfile(through, io.BytesIO(b"x"))
    status, text = _build_raw(daemon, buffer.getvalue(), tag)
    assert "escape/pwned.txt" in text and "Successfully built" not in text, (status, text)
    assert not (tmp_path / "pwned.txt").exists()
    assert _ids(daemon, "images", "-aq") == images_before
    # an absolute symlink alone is kept, but COPY through it resolves inside the context
    context = tar_bytes({"Dockerfile": b"FROM bb\nCOPY escape/host.txt /h\n"})
    buffer = io.BytesIO(context[:-1024])  # reopen without the end-of-archive blocks
    with tarfile.open(fileobj=buffer, mode="a") as tar:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(link)
    status, text = _build_raw(daemon, buffer.getvalue(), tag)
    assert "host.txt" in text and "Successfully built" not in text, (status, text)
    assert _ids(daemon, "images", "-aq") == images_before
    assert daemon.docker("version").returncode == 0


# -- docker-py -------------------------------------------------------------------------------
def test_docker_py_multi_stage(docker_client, ctx: Path, tag: str) -> None:  # type: ignore[no-untyped-def]
    import docker
    (ctx / "Dockerfile").write_text(
        "ARG GREETING=default\n"
        "FROM bb AS compile\n"
        "ARG GREETING\n"
        "RUN echo \"$GREETING from compile\" > /out\n"
        "FROM bb AS final\n"
        "COPY --from=compile /out /out\n"
        "CMD [\"cat\", \"/out\"]\n"
        "FROM bb AS broken\n"
        "RUN echo never-built && exit 1\n")
    image, logs = docker_client.images.build(path=str(ctx), tag=tag, rm=True, forcerm=True,
                                             buildargs={"GREETING": "hello"}, target="final")
    streams = "".join(chunk.get("stream", "") for chunk in logs)
    assert "Step 1/7 : ARG GREETING=default" in streams and "Step 7/7 : CMD [\"cat\", \"/out\"]" in streams, streams
    assert "never-built" not in streams
    assert docker_client.containers.run(image.id, remove=True) == b"hello from compile\n"
    assert tag in image.tags
    (ctx / "Dockerfile").write_text("FROM bb\nRUN echo failing && exit 7\n")
    with pytest.raises(docker.errors.BuildError) as caught:
        docker_client.images.build(path=str(ctx), rm=True, forcerm=True)
    assert "returned a non-zero code: 7" in caught.value.msg
    assert any("failing" in chunk.get("stream", "") for chunk in caught.value.build_log)


# -- reproducibility -------------------------------------------------------------------------
def _layers(daemon: DaemonProcess, name: str) -> list[str]:
    out = daemon.docker("inspect", "--format", "{{json .RootFS.Layers}}", name)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_copy_only_layers_are_reproducible(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "app" / "pkg").mkdir(parents=True)
    (ctx / "app" / "main.py").write_text("print('hi')\n")
    (ctx / "app" / "pkg" / "mod.py").write_text("x = 1\n")
    (ctx / "file").write_text("top\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo("inside")
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
        tar.addfile(folder)
        info = tarfile.TarInfo("inside/packed.txt")
        info.size, info.mtime = 7, 1_600_000_000
        tar.addfile(info, io.BytesIO(b"packed\n"))
    (ctx / "bundle.tar").write_bytes(buffer.getvalue())
    # into an existing directory, into directories the copy creates, an archive ADD
    # extracts, a file from another image, and heredoc files
    (ctx / "Dockerfile").write_text(
        "FROM bb\nCOPY file /etc/file\nCOPY app/ /srv/app/\nADD bundle.tar /opt/unpacked/\n"
        "COPY --from=bb /bin/busybox /tools/bin/\nCOPY <<one <<two /notes/\nfirst\none\n"
        "second\ntwo\n")
    layers = []
    for _ in range(2):
        ok_build(daemon, ctx, "--no-cache", "-t", tag)
        layers.append(_layers(daemon, tag))
        time.sleep(1.1)  # a later second: a directory's mtime would show it
    assert len(layers[0]) == len(_layers(daemon, "bb")) + 5
    assert layers[0] == layers[1]
    # an existing directory keeps its mtime; one the copy creates gets the sources' newest
    times = run(daemon, tag, "stat", "-c", "%Y", "/etc", "/opt/unpacked").split()
    base = run(daemon, "bb", "stat", "-c", "%Y", "/etc").split()
    assert times[0] == base[0] and times[1] == str(int((ctx / "bundle.tar").stat().st_mtime))
    assert run(daemon, tag, "cat", "/notes/one", "/notes/two") == "first\nsecond\n"
