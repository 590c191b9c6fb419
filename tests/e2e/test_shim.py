"""Real containers (crun + a busybox rootfs) run through dockyard-shim.

Each test gets its own crun root, cgroup parent ``/dockyard-test-<random>`` and state
dirs; teardown deletes the containers, kills leftover shims and removes the cgroups.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.runtime.shim import build
from dockyard.runtime.shim.client import (
    WAIT,
    AttachConnection,
    Launched,
    ShimConfig,
    ShimFrame,
    launch,
    read_exit,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crun"), reason="needs root and crun"
)

REPO = Path(__file__).resolve().parents[2]
APPLETS = ("sh", "echo", "cat", "sleep", "stty", "printf", "head", "tr", "true", "wc", "ls")
MIB = 1024 * 1024


def hybrid_cgroups() -> bool:
    """cgroup v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified."""
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    return any(" /sys/fs/cgroup/unified " in m and " - cgroup2 " in m for m in mounts)


HIDE_CGROUP2 = hybrid_cgroups()


@pytest.fixture(scope="session")
def shim_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.shim_binary(tmp_path_factory.mktemp("shim-cache"))


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rootfs")
    (root / "bin").mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("proc", "dev", "sys", "tmp"):
        (root / d).mkdir()
    return root


@pytest.fixture(scope="session")
def base_spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("spec")
    subprocess.run(["crun", "spec"], cwd=where, check=True)
    spec: dict[str, Any] = json.loads((where / "config.json").read_text())
    spec["process"]["terminal"] = False
    return spec


class Harness:
    """Makes bundles and launches shims; remembers everything for cleanup."""

    def __init__(self, shim: Path, rootfs: Path, spec: dict[str, Any], tmp: Path) -> None:
        self.shim, self.rootfs, self.spec, self.tmp = shim, rootfs, spec, tmp
        self.tag = "dockyard-test-" + secrets.token_hex(4)
        self.runtime_root = tmp / "crun"
        self.runtime_root.mkdir()
        self.ids: list[tuple[Path, str]] = []
        self.shims: list[int] = []

    def crun(self, *args: str, check: bool = True, runtime: str | Path = "crun",
             ) -> subprocess.CompletedProcess[str]:
        cmd = [str(runtime), "--root", str(self.runtime_root), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=check)

    def process(self, args: list[str], tty: bool = False) -> dict[str, Any]:
        proc = json.loads(json.dumps(self.spec["process"]))
        proc["args"], proc["terminal"] = args, tty
        return proc

    def config(self, args: list[str], name: str, **kw: Any) -> ShimConfig:
        """A bundle for args and the ShimConfig to run it (kw: ShimConfig fields, memory)."""
        cid = f"{self.tag}-{name}"
        bundle = self.tmp / f"bundle-{name}"
        bundle.mkdir()
        spec = json.loads(json.dumps(self.spec))
        spec["root"]["path"] = str(self.rootfs)
        spec["process"] = self.process(args, kw.get("tty", False))
        spec["linux"]["cgroupsPath"] = f"/{self.tag}/{cid}"
        memory = kw.pop("memory", None)
        if memory:
            spec["linux"].setdefault("resources", {})["memory"] = {"limit": memory, "swap": memory}
        (bundle / "config.json").write_text(json.dumps(spec))
        state = self.tmp / f"state-{name}"
        state.mkdir()
        runtime = Path(shutil.which(kw.pop("runtime", "crun")) or "crun")
        self.ids.append((runtime, cid))
        return ShimConfig(runtime=runtime,
                          runtime_root=self.runtime_root, container_id=cid, bundle=bundle,
                          state_dir=state, log_path=state / "container.log",
                          hide_cgroup2=HIDE_CGROUP2 and runtime.name == "crun", **kw)

    def exec_config(self, base: ShimConfig, args: list[str], name: str, **kw: Any) -> ShimConfig:
        state = self.tmp / f"state-{name}"
        state.mkdir()
        process_file = state / "process.json"
        process_file.write_text(json.dumps(self.process(args, kw.get("tty", False))))
        return ShimConfig(runtime=base.runtime, runtime_root=base.runtime_root,
                          container_id=base.container_id, bundle=base.bundle, state_dir=state,
                          log_path=state / "exec.log", exec_process=process_file, **kw)

    def launch(self, cfg: ShimConfig) -> Launched:
        launched = launch(self.shim, cfg)
        self.shims.append(launched.shim_pid)
        return launched

    def run(self, args: list[str], name: str = "c", **kw: Any) -> tuple[ShimConfig, Launched]:
        cfg = self.config(args, name, **kw)
        return cfg, self.launch(cfg)

    def cleanup(self) -> None:
        for runtime, cid in self.ids:
            self.crun("delete", "-f", cid, check=False, runtime=runtime)
        for pid in self.shims:
            if shim_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            if remove_cgroups(self.tag):
                break
            time.sleep(0.1)


def shim_alive(pid: int) -> bool:
    try:
        return b"dockyard-shim" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def remove_cgroups(tag: str) -> bool:
    """Removes /sys/fs/cgroup/*/<tag> bottom-up; True when none is left."""
    left = False
    for top in Path("/sys/fs/cgroup").glob(f"*/{tag}"):
        for dirpath, _, _ in sorted(os.walk(top, topdown=False), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                left = True
    return not left


@pytest.fixture
def h(shim_bin: Path, rootfs: Path, base_spec: dict[str, Any], tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(shim_bin, rootfs, base_spec, tmp_path)
    try:
        yield harness
    finally:
        harness.cleanup()


def attach(cfg: ShimConfig, mode: str = "A") -> AttachConnection:
    return AttachConnection.connect(cfg.state_dir, mode, timeout=60)


def collect(conn: AttachConnection) -> tuple[bytes, bytes, int | None]:
    """stdout, stderr and the exit status read until the exit frame (or EOF)."""
    out, err = bytearray(), bytearray()
    while (frame := conn.read_frame()) is not None:
        if frame.type == ShimFrame.STDOUT:
            out += frame.payload
        elif frame.type == ShimFrame.STDERR:
            err += frame.payload
        elif frame.type == ShimFrame.EXIT:
            return bytes(out), bytes(err), int(frame.payload)
    return bytes(out), bytes(err), None


def read_until(conn: AttachConnection, needle: bytes) -> bytes:
    seen = bytearray()
    while needle not in seen:
        frame = conn.read_frame()
        assert frame is not None and frame.type != ShimFrame.EXIT, seen
        seen += frame.payload
    return bytes(seen)


def log_entries(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while shim_alive(pid):
        assert time.monotonic() < deadline, f"shim {pid} did not exit"
        time.sleep(0.05)


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return -1


def test_echo_reaches_client_log_and_exit_file(h: Harness) -> None:
    cfg, launched = h.run(["sh", "-c", "echo hello; echo oops >&2"])
    assert launched.pid == 0 and launched.shim_pid > 0  # nothing runs before the start
    with attach(cfg) as conn:
        assert conn.start() > 0
        out, err, status = collect(conn)
    assert (out, err, status) == (b"hello\n", b"oops\n", 0)
    wait_gone(launched.shim_pid)
    entries = log_entries(cfg.log_path)
    assert [(e["log"], e["stream"]) for e in entries] == [("hello\n", "stdout"), ("oops\n", "stderr")]
    assert all(e["time"].endswith("Z") and len(e["time"]) == 30 for e in entries)
    exit_status = read_exit(cfg.state_dir)
    assert exit_status is not None and (exit_status.exit_code, exit_status.signal) == (0, 0)
    assert not (cfg.state_dir / "attach.sock").exists()
    assert h.crun("state", cfg.container_id).returncode == 0  # the shim does not delete


def test_exit_code(h: Harness) -> None:
    cfg, launched = h.run(["sh", "-c", "exit 3"])
    with attach(cfg) as conn:
        conn.start()
        assert collect(conn)[2] == 3
    wait_gone(launched.shim_pid)
    exit_status = read_exit(cfg.state_dir)
    assert exit_status is not None and (exit_status.exit_code, exit_status.signal) == (3, 0)


def test_sigkill_gives_137_and_pss_is_small(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, launched = h.run(["sleep", "100"])
    waiter = attach(cfg, WAIT)
    with attach(cfg) as conn:
        conn.start()
        time.sleep(0.2)
        with capsys.disabled():
            print(f"\n[shim] PSS of dockyard-shim pid {launched.shim_pid}: "
                  f"{pss_kib(launched.shim_pid)} KiB")
        h.crun("kill", cfg.container_id, "KILL")
        assert collect(conn)[2] == 137
    assert waiter.wait() == 137
    waiter.close()
    exit_status = read_exit(cfg.state_dir)
    assert exit_status is not None and (exit_status.exit_code, exit_status.signal) == (137, 9)


def test_stdin_round_trip_and_close(h: Harness) -> None:
    cfg, _ = h.run(["cat"], stdin=True)
    with attach(cfg) as conn:
        conn.start()
        conn.send_stdin(b"ping\n")
        assert read_until(conn, b"ping\n") == b"ping\n"
        conn.send_stdin(b"pong\n")
        conn.close_stdin()
        out, _, status = collect(conn)
    assert (out, status) == (b"pong\n", 0)


def test_last_stdin_writer_leaving_closes_stdin(h: Harness) -> None:
    cfg, _ = h.run(["sh", "-c", "wc -c"], stdin=True)
    with attach(cfg) as conn:
        conn.start()
        with attach(cfg) as writer:
            writer.send_stdin(b"12345")
        out, _, status = collect(conn)
    assert (out.strip(), status) == (b"5", 0)


def test_tty_output_and_resize(h: Harness) -> None:
    script = "stty size; read line; stty size; echo got $line"
    cfg, _ = h.run(["sh", "-c", script], tty=True, stdin=True)
    with attach(cfg) as conn:
        conn.resize(30, 100)
        conn.start()
        assert b"30 100\r\n" in read_until(conn, b"30 100\r\n")
        conn.resize(40, 120)
        conn.send_stdin(b"go\n")
        out, err, status = collect(conn)
    assert status == 0 and err == b""
    assert b"40 120\r\n" in out and b"got go\r\n" in out
    assert "got go" in cfg.log_path.read_text()


def test_exec_in_running_container(h: Harness) -> None:
    cfg, launched = h.run(["sleep", "100"])
    with attach(cfg) as conn:
        conn.start()
    ecfg = h.exec_config(cfg, ["sh", "-c", "echo hi; echo there >&2; exit 5"], "exec")
    elaunched = h.launch(ecfg)
    assert elaunched.pid == 0
    with attach(ecfg) as conn:
        pid = conn.start()
        assert pid > 0 and pid != launched.pid
        out, err, status = collect(conn)
    assert (out, err, status) == (b"hi\n", b"there\n", 5)
    assert read_exit(ecfg.state_dir).exit_code == 5  # type: ignore[union-attr]
    assert [e["log"] for e in log_entries(ecfg.log_path)] == ["hi\n", "there\n"]
    assert read_exit(cfg.state_dir) is None  # the container keeps running
    with attach(cfg, WAIT) as waiter:
        h.crun("kill", cfg.container_id, "KILL")
        assert waiter.wait() == 137


def test_exec_with_tty_and_resize(h: Harness) -> None:
    """Resizes reach an exec'd process's pty.  (Its first size cannot be set race-free
    through the shim: the runtime runs the process before handing over the pty.)"""
    cfg, _ = h.run(["sleep", "100"])
    with attach(cfg) as conn:
        conn.start()
    script = "read x; stty size; read x; stty size"
    ecfg = h.exec_config(cfg, ["sh", "-c", script], "exec", tty=True, stdin=True)
    h.launch(ecfg)
    with attach(ecfg) as conn:
        conn.start()
        conn.resize(33, 77)
        conn.send_stdin(b"\n")
        read_until(conn, b"33 77\r\n")
        conn.resize(44, 88)
        conn.send_stdin(b"\n")
        out, _, status = collect(conn)
    assert (out.split(b"\r\n")[-2], status) == (b"44 88", 0)
    h.crun("kill", cfg.container_id, "KILL")


def test_failed_exec_reports_error_and_126(h: Harness) -> None:
    cfg, _ = h.run(["sleep", "100"])
    with attach(cfg) as conn:
        conn.start()
    ecfg = h.exec_config(cfg, ["/no/such/binary"], "exec")
    h.launch(ecfg)
    with attach(ecfg) as conn:
        with pytest.raises(errors.InvalidArgument, match="no/such/binary"):
            conn.start()
        assert collect(conn)[2] == 126
    assert read_exit(ecfg.state_dir).exit_code == 126  # type: ignore[union-attr]
    h.crun("kill", cfg.container_id, "KILL")


def test_log_rotation(h: Harness) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    cfg, _ = h.run(["sh", "-c", script], log_max_size=2000, log_max_files=3)
    with attach(cfg) as conn:
        conn.start()
        assert collect(conn)[2] == 0
    log = cfg.log_path
    files = sorted(p.name for p in log.parent.glob(log.name + "*"))
    assert files == [log.name, log.name + ".1", log.name + ".2"]
    for name in files:
        assert 0 < (log.parent / name).stat().st_size <= 2000
        log_entries(log.parent / name)  # every line is valid JSON
    assert log_entries(log)[-1]["log"] == "line-299-xxxxxxxxxxxxxxxxxxxx\n"
    older = [e["log"] for e in log_entries(log.parent / (log.name + ".1"))]
    newer = [e["log"] for e in log_entries(log)]
    assert int(older[-1].split("-")[1]) + 1 == int(newer[0].split("-")[1])


def test_log_rotation_with_one_file_truncates(h: Harness) -> None:
    script = "i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); done"
    cfg, _ = h.run(["sh", "-c", script], log_max_size=500, log_max_files=1)
    with attach(cfg) as conn:
        conn.start()
        assert collect(conn)[2] == 0
    log = cfg.log_path
    assert [p.name for p in log.parent.glob(log.name + "*")] == [log.name]
    assert 0 < log.stat().st_size <= 500
    assert log_entries(log)[-1]["log"] == "line-99\n"


def test_json_escaping_partial_lines_and_utf8(h: Harness) -> None:
    script = (
        r"printf 'q\042b\\s\tt\001\033\177 caf\303\251 \377 \342\202 end\n';"
        r"head -c 40000 /dev/zero | tr '\0' a; echo;"
        r"head -c 16383 /dev/zero | tr '\0' b; printf '\303\251\n'"
    )
    cfg, _ = h.run(["sh", "-c", script])
    with attach(cfg) as conn:
        conn.start()
        assert collect(conn)[2] == 0
    raw = cfg.log_path.read_text()
    assert r'"log":"q\"b\\s\tt\u0001\u001b\u007f café \ufffd \ufffd\ufffd end\n"' in raw
    logs = [e["log"] for e in log_entries(cfg.log_path)]
    assert [len(x) for x in logs[1:4]] == [16384, 16384, 40000 - 2 * 16384 + 1]
    assert logs[4:] == ["b" * 16383, "é\n"]


def test_slow_client_is_dropped_not_stalling(h: Harness) -> None:
    cfg, launched = h.run(["sh", "-c", "head -c 4000000 /dev/zero | tr '\\0' a; echo; echo end"])
    slow = attach(cfg)
    slow.start()  # ...and then never reads
    with attach(cfg, WAIT) as waiter:
        assert waiter.wait() == 0
    wait_gone(launched.shim_pid)
    _, _, status = collect(slow)
    slow.close()
    assert status is None  # it was dropped before the exit frame
    assert log_entries(cfg.log_path)[-1]["log"] == "end\n"


def test_shim_outlives_its_launcher(h: Harness) -> None:
    """The process that launched the shim and started the container is SIGKILLed (like a
    crashing daemon); the container keeps running and a new client still gets its exit."""
    cfg = h.config(["sh", "-c", "sleep 2; echo done; exit 7"], "c")
    code = (
        "import json, os, signal, subprocess, sys\n"
        "from pathlib import Path\n"
        "from dockyard.runtime.shim.client import AttachConnection, parse_report\n"
        "report = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)\n"
        "launched = parse_report(report.stdout)\n"
        "pid = AttachConnection.connect(Path(sys.argv[2])).start()\n"
        "print(json.dumps([pid, launched.shim_pid]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    argv = [sys.executable, "-c", code, json.dumps(cfg.argv(h.shim)), str(cfg.state_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid, shim_pid = json.loads(proc.stdout)
    h.shims.append(shim_pid)
    assert shim_alive(shim_pid) and Path(f"/proc/{pid}").exists()
    assert read_exit(cfg.state_dir) is None
    with attach(cfg, WAIT) as waiter:
        assert waiter.wait() == 7
    assert read_exit(cfg.state_dir).exit_code == 7  # type: ignore[union-attr]
    assert log_entries(cfg.log_path)[-1]["log"] == "done\n"
    wait_gone(shim_pid)
    with pytest.raises(errors.Unavailable):
        attach(cfg, WAIT)


def test_memory_limit_oom_kills_with_137(h: Harness) -> None:
    hog = "x=aaaaaaaa; while true; do x=$x$x; done"
    cfg, _ = h.run(["sh", "-c", hog], name="oom", memory=20 * MIB)
    with attach(cfg) as conn:
        conn.start()
        assert collect(conn)[2] == 137
    exit_status = read_exit(cfg.state_dir)
    assert exit_status is not None and exit_status.signal == 9
    oom_control = Path(f"/sys/fs/cgroup/memory/{h.tag}/{cfg.container_id}/memory.oom_control")
    if oom_control.exists():  # cgroup v1 (hybrid host): the kernel counted an OOM kill
        assert "oom_kill 0" not in oom_control.read_text()


def test_missing_executable_is_invalid_argument(h: Harness) -> None:
    cfg = h.config(["/no/such/binary"], "c")
    launched = launch(h.shim, cfg)
    with attach(cfg) as conn, pytest.raises(errors.InvalidArgument, match="no/such/binary"):
        conn.start()
    wait_gone(launched.shim_pid)  # nothing was created: the shim ends
    assert h.crun("state", cfg.container_id, check=False).returncode != 0
    assert not (cfg.state_dir / "attach.sock").exists()


@pytest.mark.skipif(not HIDE_CGROUP2, reason="only hybrid cgroup hosts need --hide-cgroup2")
def test_runtime_error_text_is_reported(h: Harness) -> None:
    cfg = h.config(["true"], "c")
    cfg = dataclasses.replace(cfg, hide_cgroup2=False)
    launched = launch(h.shim, cfg)
    with attach(cfg) as conn, pytest.raises(errors.Internal, match="hybrid"):
        conn.start()
    wait_gone(launched.shim_pid)


def test_second_start_and_many_clients(h: Harness) -> None:
    cfg, _ = h.run(["sh", "-c", "read x; echo $x"], stdin=True)
    first, second = attach(cfg), attach(cfg)
    first.start()
    with pytest.raises(errors.NotModified):
        second.start()
    first.send_stdin(b"both\n")
    assert collect(first) == (b"both\n", b"", 0)
    assert collect(second) == (b"both\n", b"", 0)
    first.close()
    second.close()


def test_container_gets_clean_fds_and_signal_state(h: Harness) -> None:
    cfg, launched = h.run(["cat", "/proc/self/status"])
    shim_fds = {os.readlink(f) for f in Path(f"/proc/{launched.shim_pid}/fd").iterdir()}
    allowed = ("/dev/null", "socket:", "pipe:", "anon_inode:[signalfd]", str(cfg.log_path))
    assert all(fd.startswith(allowed) for fd in shim_fds), shim_fds
    with attach(cfg) as conn:
        conn.start()
        out, _, status = collect(conn)
    lines = out.decode().splitlines()
    assert status == 0
    assert "SigBlk:\t0000000000000000" in lines  # the shim's SIGCHLD block is not inherited
    assert "SigIgn:\t0000000000000000" in lines  # nor its ignored SIGPIPE
    cfg2, _ = h.run(["sleep", "100"], name="c2")
    with attach(cfg2) as conn:
        conn.start()
    ecfg = h.exec_config(cfg2, ["ls", "/proc/self/fd"], "exec")
    h.launch(ecfg)
    with attach(ecfg) as conn:
        conn.start()
        out, _, status = collect(conn)
    assert out.split()[:3] == [b"0", b"1", b"2"] and len(out.split()) == 4  # + ls's own dir fd


def test_misbehaving_clients_do_not_hurt(h: Harness) -> None:
    cfg, _ = h.run(["sh", "-c", "read x; echo $x"], stdin=True)
    good = attach(cfg)
    bad = socket.socket(socket.AF_UNIX)
    bad.connect(str(cfg.state_dir / "attach.sock"))
    bad.sendall(b"Z")
    assert bad.recv(10) == b""  # unknown mode: closed
    bad.close()
    half = socket.socket(socket.AF_UNIX)
    half.connect(str(cfg.state_dir / "attach.sock"))
    half.sendall(b"A\x00\x00")  # a torn header, then gone
    half.close()
    waiters, refused = [], 0
    for _ in range(70):  # more than the shim serves: the excess is closed at once
        try:
            waiters.append(attach(cfg, WAIT))
        except errors.Unavailable:
            refused += 1
    good.start()
    good.send_stdin(b"fine\n")
    assert collect(good) == (b"fine\n", b"", 0)
    statuses = [w.wait() for w in waiters]
    assert set(statuses) <= {0, None} and refused + statuses.count(None) >= 6
    assert statuses.count(0) >= 60
    for conn in (good, *waiters):
        conn.close()


def test_stdin_flood_does_not_block_the_shim(h: Harness) -> None:
    cfg, _ = h.run(["sleep", "100"], stdin=True)
    with attach(cfg) as conn:
        conn.start()
        conn.send_stdin(b"x" * (4 * MIB))  # nobody reads it: queued up to a limit, dropped
        with attach(cfg, WAIT) as waiter:
            h.crun("kill", cfg.container_id, "KILL")
            assert waiter.wait() == 137


@pytest.mark.skipif(not shutil.which("runc"), reason="needs runc")
def test_runc_tty_exec_and_exit(h: Harness) -> None:
    cfg, _ = h.run(["sh", "-c", "read x; echo got $x; exit 4"], tty=True, stdin=True,
                   runtime="runc")
    with attach(cfg) as conn:
        conn.start()
        ecfg = h.exec_config(cfg, ["sh", "-c", "echo from exec"], "exec")
        h.launch(ecfg)
        with attach(ecfg) as econn:
            econn.start()
            assert collect(econn) == (b"from exec\n", b"", 0)
        conn.send_stdin(b"it\n")
        out, _, status = collect(conn)
    assert status == 4 and b"got it\r\n" in out


def test_unstarted_shim_ends_when_its_clients_leave(h: Harness) -> None:
    """A daemon killed between launching a shim and starting it: once the connections it
    held are gone nobody will start the container, so the shim ends (nothing was created)."""
    cfg = h.config(["true"], "c")
    launched = launch(h.shim, cfg)
    h.shims.append(launched.shim_pid)
    attach(cfg).close()  # attach and resize clients come and go: the shim still waits
    time.sleep(0.2)
    assert shim_alive(launched.shim_pid)
    waiter = attach(cfg, WAIT)
    attach(cfg).close()
    time.sleep(0.2)
    assert shim_alive(launched.shim_pid)  # held: it waits for the start
    waiter.close()
    wait_gone(launched.shim_pid)
    assert not (cfg.state_dir / "attach.sock").exists()
    assert read_exit(cfg.state_dir) is None
    assert h.crun("state", cfg.container_id, check=False).returncode != 0
