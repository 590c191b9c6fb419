"""Our ``dockyard`` CLI against a real daemon, compared with the real docker CLI's output."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import tarfile
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess

REPO = Path(__file__).resolve().parents[2]
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def dy(daemon: DaemonProcess, *args: str, input: bytes | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    env = dict(daemon.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "dockyard.cli.main", *args], check=False, env=env,
                          input=input, capture_output=True, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def dk(daemon: DaemonProcess, *args: str,
       input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return daemon.docker(*args, input=input)


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, f"{result.args}: {result.stderr.decode()}"
    return result.stdout.decode()


def same_output(daemon: DaemonProcess, *args: str, tries: int = 4) -> str:
    """Our stdout equals docker's; retried because "N seconds ago" may tick in between. Rows
    may come in another order only where docker's own order is random: an image tagged in
    several repositories lists them in Go map order (ours are sorted)."""
    ours = theirs = ""
    for _ in range(tries):
        theirs = ok(dk(daemon, *args))
        ours = ok(dy(daemon, *args))
        if ours == theirs or ours == ok(dk(daemon, *args)):
            return ours
        if sorted(ours.splitlines()) == sorted(theirs.splitlines()):
            return ours
        time.sleep(0.3)
    assert ours == theirs, f"dockyard {' '.join(args)} differs from docker"
    return ours


@pytest.fixture
def names(daemon: DaemonProcess) -> Iterator[list[str]]:
    """Container names a test creates; removed afterwards."""
    created: list[str] = []
    yield created
    if created:
        dk(daemon, "rm", "-f", *created)


def unique(names: list[str]) -> str:
    name = "cli" + uuid.uuid4().hex[:10]
    names.append(name)
    return name


def test_ps_matches_docker(daemon: DaemonProcess, bb_image: str, names: list[str]) -> None:
    running = unique(names)
    ok(dy(daemon, "run", "-d", "--name", running, "-l", "b=2", "-l", "a=1", bb_image,
          "sleep", "300"))
    exited = unique(names)
    assert dy(daemon, "run", "--name", exited, bb_image, "sh", "-c", "exit 3").returncode == 3
    for args in (["ps"], ["ps", "-a"], ["ps", "-a", "--no-trunc"], ["ps", "-q"],
                 ["ps", "-a", "-q", "--no-trunc"], ["ps", "-l"], ["ps", "-n", "2"],
                 ["ps", "-a", "-f", f"name={exited}"], ["ps", "-a", "-f", "status=exited"],
                 ["ps", "--format", "{{.Names}}\t{{.Labels}}\t{{.Label \"a\"}}"],
                 ["ps", "-a", "--format", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.State}}"],
                 ["ps", "-a", "--format", "json"], ["ps", "-s"], ["container", "ls", "-a"]):
        same_output(daemon, *args)
    table = ok(dy(daemon, "ps", "-a")).splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                "PORTS", "NAMES"]
    assert any(running in line and '"sleep 300"' in line for line in table)


def test_images_match_docker(daemon: DaemonProcess, bb_image: str) -> None:
    for args in (["images"], ["images", "-q"], ["images", "--no-trunc"], ["images", "-a"],
                 ["images", "--digests"], ["images", "bb"], ["images", "--format", "json"],
                 ["images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
                 ["image", "ls"], ["history", bb_image], ["history", "--no-trunc", bb_image],
                 ["history", "-H=false", bb_image], ["system", "df"], ["system", "df", "-v"]):
        same_output(daemon, *args)
    header = ok(dy(daemon, "images")).splitlines()[0]
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]


INSPECT_FORMATS = (
    "{{.Id}}", "{{.Name}}", "{{.State.Status}}", "{{.State.Running}} {{.State.ExitCode}}",
    "{{.Config.Cmd}}", "{{json .Config.Cmd}}", "{{.Config.Image}}", "{{json .Config.Labels}}",
    "{{index .Config.Labels \"a\"}}", "{{.HostConfig.Binds}}", "{{.Config.Entrypoint}}",
    "{{range .Config.Env}}{{.}};{{end}}", "{{.State.Health}}", "{{json .State}}",
    "{{if .State.Running}}up{{else}}down{{end}}", "{{.HostConfig.RestartPolicy.Name}}",
    "{{len .Config.Cmd}}", "{{upper .Config.Image}}", "{{json .Mounts}}",
)


def test_inspect_matches_docker(daemon: DaemonProcess, bb_image: str,
                                names: list[str]) -> None:
    name = unique(names)
    ok(dy(daemon, "run", "-d", "--name", name, "-l", "a=1", bb_image, "sleep", "300"))
    for fmt in INSPECT_FORMATS:
        same_output(daemon, "inspect", "-f", fmt, name)
    for fmt in ("{{.Id}}", "{{.RepoTags}}", "{{json .RepoTags}}", "{{.Config.Cmd}}",
                "{{.Os}}/{{.Architecture}}", "{{json .RootFS}}"):
        same_output(daemon, "image", "inspect", "-f", fmt, bb_image)
    same_output(daemon, "inspect", name)
    same_output(daemon, "inspect", bb_image)
    same_output(daemon, "container", "inspect", "-f", "{{.State.Pid}}", name)
    missing = dy(daemon, "inspect", "nosuch-object-x")
    theirs = dk(daemon, "inspect", "nosuch-object-x")
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        theirs.returncode, theirs.stdout, theirs.stderr)
    bad = dy(daemon, "inspect", "-f", "{{.Nope}}", name)
    assert bad.returncode == 1
    assert bad.stderr == dk(daemon, "inspect", "-f", "{{.Nope}}", name).stderr


def test_logs_match_docker(daemon: DaemonProcess, bb_image: str, names: list[str]) -> None:
    name = unique(names)
    ok(dy(daemon, "run", "--name", name, bb_image, "sh", "-c",
          "echo one; echo two >&2; echo three"))
    for args in (["logs", name], ["logs", "--tail", "1", name], ["logs", "-t", name],
                 ["logs", "--tail", "0", name], ["logs", "--since", "1h", name]):
        ours, theirs = dy(daemon, *args), dk(daemon, *args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            theirs.returncode, theirs.stdout, theirs.stderr), args
    assert dy(daemon, "logs", name).stdout == b"one\nthree\n"
    assert dy(daemon, "logs", name).stderr == b"two\n"


def test_run_exit_codes_match_docker(daemon: DaemonProcess, bb_image: str) -> None:
    cases = [
        ["run", "--rm", bb_image, "sh", "-c", "exit 3"],
        ["run", "--rm", bb_image, "true"],
        ["run", "--rm", bb_image, "nosuchcommand"],
        ["run", "--rm", bb_image, "/etc/passwd"],
        ["run", "--rm", "no-such-image-here"],
        ["run", "--rm", "--restart", "always", bb_image],
        ["run", "-a", "stdin", "-d", bb_image],
        ["run", "--bogus-flag", bb_image],
        ["run"],
    ]
    for args in cases:
        ours, theirs = dy(daemon, *args), dk(daemon, *args)
        assert ours.returncode == theirs.returncode, (args, ours.stderr, theirs.stderr)
        assert ours.stdout == theirs.stdout, args
        expected = theirs.stderr.decode().replace("docker", "dockyard")
        expected = expected.replace("Docker daemon", "dockyard daemon")
        assert ours.stderr.decode() == expected, args


def test_run_streams_and_detach(daemon: DaemonProcess, bb_image: str,
                                names: list[str]) -> None:
    out = dy(daemon, "run", "--rm", bb_image, "sh", "-c", "echo out; echo err >&2")
    assert (out.returncode, out.stdout, out.stderr) == (0, b"out\n", b"err\n")
    piped = dy(daemon, "run", "--rm", "-i", bb_image, "tr", "a-z", "A-Z", input=b"shout\n")
    assert piped.stdout == b"SHOUT\n"
    name = unique(names)
    cid = ok(dy(daemon, "run", "-d", "--name", name, bb_image, "sleep", "300")).strip()
    assert HEX64.match(cid)
    assert ok(dy(daemon, "inspect", "-f", "{{.Id}}", name)).strip() == cid
    assert ok(dy(daemon, "stop", "-t", "1", name)).strip() == name
    assert ok(dy(daemon, "wait", name)).strip() == ok(dk(daemon, "inspect", "-f",
                                                         "{{.State.ExitCode}}", name)).strip()
    created = ok(dy(daemon, "create", "--name", unique(names), bb_image, "echo", "hi")).strip()
    assert HEX64.match(created)
    attached = dy(daemon, "start", "-a", created)
    assert (attached.returncode, attached.stdout) == (0, b"hi\n")


def test_exec_matches_docker(daemon: DaemonProcess, bb_image: str, names: list[str]) -> None:
    name = unique(names)
    ok(dy(daemon, "run", "-d", "--name", name, bb_image, "sleep", "300"))
    for args in (["exec", name, "sh", "-c", "echo out; echo err >&2; exit 7"],
                 ["exec", "-e", "A=1", "-w", "/tmp", name, "sh", "-c", "echo $A $(pwd)"],
                 ["exec", "-u", "nobody", name, "id", "-un"],
                 ["exec", name, "cat", "/etc/hostname"]):
        ours, theirs = dy(daemon, *args), dk(daemon, *args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            theirs.returncode, theirs.stdout, theirs.stderr), args
    fed = dy(daemon, "exec", "-i", name, "cat", input=b"piped\n")
    assert (fed.returncode, fed.stdout) == (0, b"piped\n")
    assert dy(daemon, "exec", "-d", name, "touch", "/tmp/bg").returncode == 0
    same_output(daemon, "top", name)


def test_cp_round_trip(daemon: DaemonProcess, bb_image: str, names: list[str],
                       tmp_path: Path) -> None:
    name = unique(names)
    ok(dy(daemon, "run", "-d", "--name", name, bb_image, "sleep", "300"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.txt").write_text("beta\n")
    ok(dy(daemon, "cp", str(src), f"{name}:/tmp/copied"))
    ok(dy(daemon, "cp", str(src / "a.txt"), f"{name}:/tmp/"))
    assert ok(dy(daemon, "exec", name, "cat", "/tmp/copied/sub/b.txt", "/tmp/a.txt")) == \
        "beta\nalpha\n"
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ok(dy(daemon, "cp", f"{name}:/tmp/copied", str(ours)))
    ok(dk(daemon, "cp", f"{name}:/tmp/copied", str(theirs)))
    for rel in ("a.txt", "sub/b.txt"):
        assert (ours / rel).read_text() == (theirs / rel).read_text() == (src / rel).read_text()
    ok(dy(daemon, "cp", f"{name}:/tmp/a.txt", str(tmp_path / "renamed.txt")))
    assert (tmp_path / "renamed.txt").read_text() == "alpha\n"
    dest = tmp_path / "into"
    dest.mkdir()
    ok(dy(daemon, "cp", f"{name}:/tmp/copied/.", str(dest)))
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt", "sub"]
    streamed = dy(daemon, "cp", f"{name}:/tmp/a.txt", "-")
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        assert tar.getnames() == ["a.txt"]
    missing = dy(daemon, "cp", f"{name}:/nope", str(tmp_path / "x"))
    theirs_missing = dk(daemon, "cp", f"{name}:/nope", str(tmp_path / "x"))
    assert (missing.returncode, missing.stderr) == (theirs_missing.returncode,
                                                    theirs_missing.stderr)


def test_save_load_round_trip(daemon: DaemonProcess, bb_image: str, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    ok(dy(daemon, "save", "-o", str(ours), bb_image))
    ok(dk(daemon, "save", "-o", str(theirs), bb_image))
    assert ours.read_bytes() == theirs.read_bytes()
    piped = dy(daemon, "save", bb_image)
    assert piped.stdout == ours.read_bytes()
    assert ok(dy(daemon, "load", "-i", str(ours))) == "Loaded image: bb:latest\n"
    assert ok(dy(daemon, "load", input=piped.stdout)) == ok(dk(daemon, "load", "-i",
                                                               str(theirs)))
    assert ok(dk(daemon, "load", input=piped.stdout)) == "Loaded image: bb:latest\n"


def test_commit_diff_export_import(daemon: DaemonProcess, bb_image: str, names: list[str],
                                   tmp_path: Path) -> None:
    name = unique(names)
    ok(dy(daemon, "run", "--name", name, bb_image, "sh", "-c", "echo x > /tmp/new"))
    same_output(daemon, "diff", name)
    assert "A /tmp/new" in ok(dy(daemon, "diff", name)).splitlines()
    tag = f"cli-commit-{uuid.uuid4().hex[:6]}:v1"
    image_id = ok(dy(daemon, "commit", "-m", "msg", "-c", "ENV FOO=bar", name, tag)).strip()
    assert image_id.startswith("sha256:")
    assert "FOO=bar" in ok(dy(daemon, "inspect", "-f", "{{json .Config.Env}}", tag))
    archive = tmp_path / "fs.tar"
    ok(dy(daemon, "export", "-o", str(archive), name))
    with tarfile.open(archive) as tar:
        assert "tmp/new" in tar.getnames()
    imported = f"cli-import-{uuid.uuid4().hex[:6]}:v2"
    assert ok(dy(daemon, "import", str(archive), imported)).startswith("sha256:")
    assert ok(dy(daemon, "run", "--rm", imported, "cat", "/tmp/new")) == "x\n"
    untag = ok(dy(daemon, "rmi", tag, imported))
    assert f"Untagged: {tag}" in untag and "Deleted: sha256:" in untag


def test_usage_errors_match_docker(daemon: DaemonProcess) -> None:
    for args in (["ps", "--bogus"], ["rm"], ["rename", "a"], ["logs"], ["ps", "x"],
                 ["run", "-m", "abc", "bb"], ["stop", "-t", "x", "a"], ["frob"]):
        ours, theirs = dy(daemon, *args), dk(daemon, *args)
        assert ours.returncode == theirs.returncode, args
        assert ours.stderr.decode() == theirs.stderr.decode().replace("docker", "dockyard"), args


def test_version_info_events(daemon: DaemonProcess, bb_image: str) -> None:
    version = ok(dy(daemon, "version"))
    assert version.startswith("Client:\n Version:") and "\nServer:" in version
    assert " API version:       1.50" in version
    assert ok(dy(daemon, "info", "--format", "{{.Driver}}")) == ok(
        dk(daemon, "info", "--format", "{{.Driver}}"))
    assert ok(dy(daemon, "version", "-f", "{{.Server.Version}}")) == ok(
        dk(daemon, "version", "-f", "{{.Server.Version}}"))
    for args in (["events", "--since", "10m", "--until", "0s"],
                 ["events", "--since", "10m", "--until", "0s", "--format", "{{json .}}"],
                 ["events", "--since", "10m", "--until", "0s", "-f", "event=start",
                  "--format", "{{.Action}} {{.Actor.Attributes.name}}"]):
        same_output(daemon, *args)


def _pty_run(daemon: DaemonProcess, args: list[str], script: bytes, timeout: float = 30,
             wait_for: bytes | None = b"# ") -> tuple[int, bytes]:
    """Run ``dockyard ARGS`` on a 30x100 pseudo-terminal, typing ``script``."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = dict(daemon.env, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "dockyard.cli.main", *args], stdin=slave,
                            stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = b""
    start = time.time()
    deadline = start + timeout
    typed = False
    try:
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            ready_to_type = (wait_for in seen) if wait_for else time.time() - start > 1.5
            if not typed and (ready_to_type or not script):
                os.write(master, script)
                typed = True
        return proc.wait(timeout=15), seen
    finally:
        os.close(master)


def test_run_and_exec_with_a_terminal(daemon: DaemonProcess, bb_image: str,
                                      names: list[str]) -> None:
    code, out = _pty_run(daemon, ["run", "--rm", "-it", bb_image, "sh", "-c",
                                  "tty; sleep 0.5; stty size; exit 4"], b"")
    assert code == 4 and b"30 100" in out and b"/dev/pts/" in out
    code, out = _pty_run(daemon, ["run", "--rm", "-it", bb_image, "sh"],
                         b"echo hi-$((40+2))\nexit 5\n")
    assert code == 5 and b"hi-42" in out
    name = unique(names)
    ok(dy(daemon, "run", "-d", "--name", name, bb_image, "sleep", "300"))
    code, out = _pty_run(daemon, ["exec", "-it", name, "sh"], b"echo x-$((6*7)); exit 6\n")
    assert code == 6 and b"x-42" in out


def test_detach_keys_leave_the_container_running(daemon: DaemonProcess, bb_image: str,
                                                 names: list[str]) -> None:
    name = unique(names)
    code, _ = _pty_run(daemon, ["run", "-it", "--name", name, bb_image, "sh"], b"\x10\x11")
    assert code == 0
    assert ok(dy(daemon, "inspect", "-f", "{{.State.Running}}", name)) == "true\n"
    code, _ = _pty_run(daemon, ["attach", "--detach-keys", "ctrl-a,x", name], b"\x01x",
                       wait_for=None)
    assert code == 0
    assert ok(dy(daemon, "inspect", "-f", "{{.State.Running}}", name)) == "true\n"
