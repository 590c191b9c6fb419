"""docker build through the real docker CLI and docker-py: instructions, stages, the cache."""
from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


def build(daemon: DaemonProcess, ctx: Path, *args: str) -> tuple[int, str]:
    out = daemon.docker("build", *args, str(ctx), timeout=120)
    return out.returncode, out.stdout.decode() + out.stderr.decode()


def ok_build(daemon: DaemonProcess, ctx: Path, *args: str) -> str:
    code, text = build(daemon, ctx, *args)
    assert code == 0, text
    return text


def run(daemon: DaemonProcess, *args: str) -> str:
    out = daemon.docker("run", "--rm", *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def tag() -> str:
    return "built" + uuid.uuid4().hex[:8] + ":1"


def test_three_step_build_and_cache(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "file").write_text("v1\n")
    (ctx / "Dockerfile").write_text("FROM bb\nRUN echo a > /a\nCOPY file /f\nCMD [\"cat\", \"/f\"]\n")
    first = ok_build(daemon, ctx, "-t", tag)
    assert "Step 1/4 : FROM bb" in first and "Successfully tagged " + tag in first
    assert "Running in" in first
    assert run(daemon, tag) == "v1\n"
    second = ok_build(daemon, ctx, "-t", tag)
    assert second.count("Using cache") == 3
    (ctx / "file").write_text("v2\n")
    third = ok_build(daemon, ctx, "-t", tag)
    assert third.count("Using cache") == 1  # RUN stays cached; COPY and later steps miss
    assert "cache miss: COPY file changed: file" in third
    assert run(daemon, tag) == "v2\n"
    nocache = ok_build(daemon, ctx, "--no-cache", "-t", tag)
    assert "Using cache" not in nocache
    history = daemon.docker("history", "--no-trunc", tag).stdout.decode()
    assert "echo a > /a" in history and "CMD [\"cat\" \"/f\"]" in history.replace(",", "")


def test_every_metadata_instruction(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM bb\n"
        "LABEL org.example.a=1 b=\"two words\"\n"
        "MAINTAINER someone\n"
        "ENV GREETING=hello NAME=world\n"
        "ARG WHO=default\n"
        "WORKDIR /srv\n"
        "WORKDIR app\n"
        "USER 65534\n"
        "EXPOSE 80 53/udp\n"
        "VOLUME /data\n"
        "STOPSIGNAL SIGUSR1\n"
        "HEALTHCHECK --interval=5s CMD true\n"
        "SHELL [\"/bin/sh\", \"-c\"]\n"
        "ONBUILD RUN echo triggered\n"
        "ENTRYPOINT [\"sh\", \"-c\"]\n"
        "CMD [\"echo $GREETING $NAME from $(pwd) as $(id -u)\"]\n")
    ok_build(daemon, ctx, "-t", tag)
    config = json.loads(daemon.docker("image", "inspect", tag).stdout)[0]["Config"]
    assert config["Labels"] == {"org.example.a": "1", "b": "two words"}
    assert "GREETING=hello" in config["Env"] and not any("WHO" in e for e in config["Env"])
    assert config["WorkingDir"] == "/srv/app" and config["User"] == "65534"
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp"}
    assert config["Volumes"] == {"/data": {}} and config["StopSignal"] == "SIGUSR1"
    assert config["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert config["OnBuild"] == ["RUN echo triggered"]
    assert run(daemon, tag) == "hello world from /srv/app as 65534\n"


def test_args_env_and_run_forms(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text(
        "ARG BASE=bb\n"
        "FROM $BASE\n"
        "ARG VERSION=1.0\n"
        "ENV FULL=v${VERSION}\n"
        "RUN [\"sh\", \"-c\", \"echo exec-form $FULL > /exec\"]\n"
        "RUN echo shell-form $VERSION > /shell\n"
        "RUN <<EOF\n"
        "echo heredoc line one > /heredoc\n"
        "echo heredoc line two >> /heredoc\n"
        "EOF\n")
    ok_build(daemon, ctx, "--build-arg", "VERSION=2.5", "-t", tag)
    assert run(daemon, tag, "cat", "/exec", "/shell", "/heredoc") == \
        "exec-form v2.5\nshell-form 2.5\nheredoc line one\nheredoc line two\n"


def test_copy_add_dockerignore_and_chown(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "app").mkdir()
    (ctx / "app" / "main.py").write_text("print('hi')\n")
    (ctx / "app" / "secret.key").write_text("nope\n")
    (ctx / "notes.md").write_text("notes\n")
    (ctx / ".dockerignore").write_text("**/*.key\n*.md\n")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("inside/packed.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"packed\n"))
    (ctx / "bundle.tar.gz").write_bytes(archive.getvalue())
    (ctx / "Dockerfile").write_text(
        "FROM bb\n"
        "COPY app/ /srv/\n"
        "COPY --chown=65534:65534 app/*.py /owned/\n"
        "ADD bundle.tar.gz /unpacked/\n")
    ok_build(daemon, ctx, "-t", tag)
    listing = run(daemon, tag, "sh", "-c",
                  "ls /srv; stat -c '%u:%g' /owned/main.py; cat /unpacked/inside/packed.txt")
    assert listing == "main.py\n65534:65534\npacked\n"
    (ctx / "Dockerfile").write_text("FROM bb\nCOPY notes.md /\n")
    code, text = build(daemon, ctx)
    assert code != 0 and "notes.md" in text


def test_multi_stage_skips_unneeded_stages(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    (ctx / "Dockerfile").write_text(
        "FROM bb AS builder\n"
        "RUN echo compiled > /artifact\n"
        "FROM bb AS unused\n"
        "RUN echo should-not-run && exit 1\n"
        "FROM scratch\n"
        "COPY --from=builder /artifact /artifact\n"
        "COPY --from=bb /bin/busybox /bin/busybox\n"
        "ENTRYPOINT [\"/bin/busybox\"]\n")
    text = ok_build(daemon, ctx, "-t", tag)
    assert "should-not-run" not in text
    assert run(daemon, tag, "cat", "/artifact") == "compiled\n"
    target = ok_build(daemon, ctx, "--target", "builder", "-t", tag + "b")
    assert "Step 2/2" in target


def test_bad_input(daemon: DaemonProcess, ctx: Path) -> None:
    images_before = daemon.docker("images", "-aq").stdout
    for text, needle in (("FROM bb\nBOGUS x\n", "unknown instruction: BOGUS"),
                         ("RUN true\n", "no build stage"),
                         ("FROM bb\nCOPY ../outside /x\n", "outside the build context"),
                         ("FROM bb\nRUN exit 3\n", "returned a non-zero code: 3"),
                         ("", "file with no instructions")):
        (ctx / "Dockerfile").write_text(text)
        code, out = build(daemon, ctx, "--force-rm")
        assert code != 0 and needle in out, (text, out)
    assert daemon.docker("images", "-aq").stdout == images_before
    assert daemon.docker("version").returncode == 0


def test_docker_py_build(docker_client, ctx: Path, tag: str) -> None:  # type: ignore[no-untyped-def]
    (ctx / "Dockerfile").write_text("FROM bb\nRUN echo from-docker-py > /x\n")
    image, logs = docker_client.images.build(path=str(ctx), tag=tag)
    assert any("Successfully built" in chunk.get("stream", "") for chunk in logs)
    assert docker_client.containers.run(image.id, "cat /x", remove=True) == b"from-docker-py\n"


def test_dockyard_cli_build_explains_cache(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    import shutil
    import subprocess
    dockyard = shutil.which("dockyard") or str(Path(__file__).parents[2] / ".venv/bin/dockyard")
    (ctx / "app").mkdir()
    (ctx / "app" / "main.py").write_text("v1\n")
    (ctx / "Dockerfile").write_text("FROM bb\nCOPY app/ /app/\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([dockyard, *args], env=daemon.env, capture_output=True,
                              text=True, timeout=120)

    assert cli("build", "-t", tag, str(ctx)).returncode == 0
    explained = cli("build", "--explain-cache", "-t", tag, str(ctx))
    assert "cache key" in explained.stdout and "Using cache" in explained.stdout
    (ctx / "app" / "main.py").write_text("v2\n")
    missed = cli("build", "-t", tag, str(ctx))
    assert "cache miss: COPY app/ changed: app/main.py" in missed.stdout, missed.stdout
    (ctx / "Dockerfile").write_text("FROM bb\nRUN exit 4\n")
    failed = cli("build", "--force-rm", str(ctx))
    assert failed.returncode == 4 and "returned a non-zero code: 4" in failed.stderr


def test_source_date_epoch_gives_reproducible_layers(daemon: DaemonProcess, ctx: Path,
                                                     tag: str) -> None:
    import time
    (ctx / "Dockerfile").write_text("FROM bb\nRUN echo a > /a && mkdir /d && touch /d/x\n")
    layers = []
    for _ in range(2):
        ok_build(daemon, ctx, "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=0", "-t", tag)
        layers.append(json.loads(daemon.docker("image", "inspect", tag).stdout)[0]
                      ["RootFS"]["Layers"])
        time.sleep(1.1)
    assert layers[0] == layers[1]


# -- intermediate containers: --rm (default), --rm=false, --force-rm ----------------------
def all_containers(daemon: DaemonProcess) -> set[str]:
    out = daemon.docker("ps", "-aq", "--no-trunc")
    assert out.returncode == 0, out.stderr
    return set(out.stdout.decode().split())


def remove_containers(daemon: DaemonProcess, ids: set[str]) -> None:
    if ids:
        assert daemon.docker("rm", "-f", *sorted(ids)).returncode == 0
    assert not ids & all_containers(daemon)


def running_in(text: str) -> list[str]:
    return [line.split()[-1] for line in text.splitlines() if "---> Running in " in line]


def test_rm_removes_intermediate_containers_by_default(daemon: DaemonProcess, ctx: Path,
                                                       tag: str) -> None:
    before = all_containers(daemon)
    (ctx / "Dockerfile").write_text(f"FROM bb\nRUN echo {uuid.uuid4().hex} > /a\n")
    text = ok_build(daemon, ctx, "-t", tag)
    [cid] = running_in(text)
    lines = text.splitlines()
    removed = lines.index(f" ---> Removed intermediate container {cid}")
    assert lines[removed + 1].startswith(" ---> ") and "Removing" not in text
    assert all_containers(daemon) == before


def test_rm_false_keeps_intermediate_containers(daemon: DaemonProcess, ctx: Path,
                                                tag: str) -> None:
    before = all_containers(daemon)
    (ctx / "Dockerfile").write_text(f"FROM bb\nRUN echo {uuid.uuid4().hex} > /a\n"
                                    "RUN echo second > /b\n")
    text = ok_build(daemon, ctx, "--rm=false", "-t", tag)
    kept = all_containers(daemon) - before
    try:
        assert len(running_in(text)) == 2 and "intermediate container" not in text
        assert {cid[:12] for cid in kept} == set(running_in(text))
        listing = daemon.docker("ps", "-a", "--filter", f"id={running_in(text)[1]}",
                                "--format", "{{.Status}}").stdout.decode()
        assert listing.startswith("Exited (0)")
    finally:
        remove_containers(daemon, kept)
    assert run(daemon, tag, "cat", "/b") == "second\n"


def test_failed_step_keeps_its_container_unless_force_rm(daemon: DaemonProcess,
                                                        ctx: Path) -> None:
    before = all_containers(daemon)
    (ctx / "Dockerfile").write_text(f"FROM bb\nRUN echo {uuid.uuid4().hex} && exit 3\n")
    code, text = build(daemon, ctx)
    kept = all_containers(daemon) - before
    try:
        assert code == 3 and "returned a non-zero code: 3" in text, text
        assert {cid[:12] for cid in kept} == set(running_in(text))
        assert "intermediate container" not in text
        status = daemon.docker("inspect", "--format", "{{.State.ExitCode}}", *kept)
        assert status.stdout.decode().split() == ["3"]
    finally:
        remove_containers(daemon, kept)
    code, text = build(daemon, ctx, "--force-rm")
    [cid] = running_in(text)
    assert code == 3 and f" ---> Removed intermediate container {cid}" in text, text
    assert all_containers(daemon) == before
    (ctx / "Dockerfile").write_text(f"FROM bb\nRUN echo {uuid.uuid4().hex}\n")
    text = ok_build(daemon, ctx, "--rm=false", "--force-rm")
    assert "Removed intermediate container" in text and all_containers(daemon) == before


# -- why a step missed the cache -----------------------------------------------------------
def test_cache_miss_lines(daemon: DaemonProcess, ctx: Path, tag: str) -> None:
    base = uuid.uuid4().hex
    dockerfile = ("FROM bb\nLABEL base={base}\nARG V=1\nRUN echo {run} $V > /r\n"
                  "ENV LATER=1\nCMD [\"cat\", \"/r\"]\n")
    (ctx / "Dockerfile").write_text(dockerfile.format(base=base, run="one"))
    ok_build(daemon, ctx, "-t", tag)
    cached = ok_build(daemon, ctx, "-t", tag)
    assert cached.count(" ---> Using cache") == 5 and "cache miss" not in cached  # ARG too
    (ctx / "Dockerfile").write_text(dockerfile.format(base=base, run="two"))
    changed = ok_build(daemon, ctx, "-t", tag)
    lines = changed.splitlines()
    miss = lines.index(" ---> cache miss: RUN instruction changed")
    assert lines[miss - 1].startswith("Step 4/6 : RUN echo two")
    assert changed.count(" ---> cache miss: parent changed (step 4 missed)") == 2, changed
    assert changed.count(" ---> Using cache") == 2  # the LABEL and ARG steps
    args = ok_build(daemon, ctx, "--build-arg", "V=2", "-t", tag)
    assert " ---> cache miss: RUN build args changed: V" in args, args
    assert run(daemon, tag) == "two 2\n"
    nocache = ok_build(daemon, ctx, "--no-cache", "-t", tag)
    assert "cache miss" not in nocache


# -- flags the classic builder does not carry out ----------------------------------------------
BUILDKIT = ("the --{} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
            "to learn how to build images with BuildKit enabled")


def test_unsupported_flags_are_refused(daemon: DaemonProcess, ctx: Path) -> None:
    (ctx / "file").write_text("x\n")
    images_before = daemon.docker("images", "-aq").stdout
    for text, needle in (
            ("FROM bb\nRUN --mount=type=cache,target=/c true\n", BUILDKIT.format("mount")),
            ("FROM bb\nCOPY --link file /f\n", BUILDKIT.format("link")),
            ("FROM bb\nADD --checksum=sha256:" + "0" * 64 + " file /f\n",
             BUILDKIT.format("checksum")),
            ("FROM bb\nADD --keep-git-dir file /f\n", BUILDKIT.format("keep-git-dir")),
            ("FROM bb\nRUN echo never-runs\nCOPY --exclude=*.md file /f\n",
             "dockerfile parse error on line 3: unknown flag: --exclude"),
            ("FROM bb\nCOPY --parents file /f\n",
             "dockerfile parse error on line 2: unknown flag: --parents"),
            ("FROM --platform=linux/arm64 bb\n", "only linux/amd64 images")):
        (ctx / "Dockerfile").write_text(text)
        code, out = build(daemon, ctx)
        assert code == 1 and needle in out, (text, out)
        assert "never-runs" not in out
    (ctx / "Dockerfile").write_text("ARG P=linux/amd64\nFROM --platform=$P bb\n"
                                    "COPY --chmod=600 file /f\n")
    ok_build(daemon, ctx)
    assert daemon.docker("images", "-aq").stdout != b""
    assert set(images_before.split()) <= set(daemon.docker("images", "-aq").stdout.split())


# -- FROM images: pulled when missing or with --pull, through the daemon's registry client --
@pytest.fixture
def registry_port(tmp_path: Path):  # type: ignore[no-untyped-def]
    import socket
    import subprocess
    import sys
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.registry.main", "serve", "--listen",
                             f"127.0.0.1:{port}", "--storage", str(tmp_path / "reg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "registry did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_from_image_is_pulled(daemon: DaemonProcess, ctx: Path, tag: str,
                              registry_port: int) -> None:
    name = f"127.0.0.1:{registry_port}/lib/base{uuid.uuid4().hex[:8]}:v1"
    assert daemon.docker("tag", "bb", name).returncode == 0
    assert daemon.docker("push", name, timeout=120).returncode == 0
    assert daemon.docker("rmi", name).returncode == 0
    (ctx / "Dockerfile").write_text(f"FROM {name}\nRUN echo pulled > /p\n")
    text = ok_build(daemon, ctx, "-t", tag)
    assert "Pulling from lib/base" in text and "Downloaded newer image" in text, text
    assert run(daemon, tag, "cat", "/p") == "pulled\n"
    again = ok_build(daemon, ctx, "--pull", "-t", tag)
    assert "Image is up to date" in again and "Using cache" in again, again
    assert "no registry is reachable" not in again
    quiet = daemon.docker("build", "-q", "--pull", str(ctx))
    assert quiet.returncode == 0 and quiet.stdout.decode().startswith("sha256:")
    assert b"Pulling" not in quiet.stdout


def test_pull_offline(daemon: DaemonProcess, ctx: Path) -> None:
    (ctx / "Dockerfile").write_text("FROM bb\n")
    text = ok_build(daemon, ctx, "--pull")
    assert "--pull: library/bb is not reachable: the daemon runs with --offline" in text
    assert "using the local image bb:latest" in text and "Successfully built" in text
    missing = "nosuch" + uuid.uuid4().hex[:8]
    (ctx / "Dockerfile").write_text(f"FROM {missing}\n")
    code, text = build(daemon, ctx)
    assert code == 1 and f"Unable to find image '{missing}:latest' locally, and " \
        f"library/{missing} is not reachable: the daemon runs with --offline" in text, text
