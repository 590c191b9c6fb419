"""The foundation issue's walk-through, through the real docker CLI against a live daemon."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


def ok(daemon: DaemonProcess, *args: str, input: bytes | None = None) -> str:
    out = daemon.docker(*args, input=input)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


@pytest.fixture
def name() -> str:
    return "t" + uuid.uuid4().hex[:10]


def test_version_and_info(daemon: DaemonProcess) -> None:
    assert "API version:       1.50" in ok(daemon, "version")
    info = json.loads(ok(daemon, "info", "--format", "{{json .}}"))
    assert info["Driver"] == "overlay2"
    assert info["DefaultRuntime"] == "crun"


def test_run_prints_and_propagates_exit_codes(daemon: DaemonProcess, bb_image: str) -> None:
    assert ok(daemon, "run", "--rm", bb_image, "echo", "hello") == "hello\n"
    assert daemon.docker("run", "--rm", bb_image, "sh", "-c", "exit 3").returncode == 3
    missing = daemon.docker("run", "--rm", bb_image, "nosuchcommand")
    assert missing.returncode == 127
    assert b"executable file not found" in missing.stderr
    assert daemon.docker("run", "--rm", bb_image, "/etc/passwd").returncode == 126
    assert daemon.docker("run", "--rm", "no-such-image-here").returncode == 125


def test_run_stdin_is_piped(daemon: DaemonProcess, bb_image: str) -> None:
    out = daemon.docker("run", "--rm", "-i", bb_image, "tr", "a-z", "A-Z", input=b"shout\n")
    assert out.stdout == b"SHOUT\n"


def test_detached_lifecycle(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    cid = ok(daemon, "run", "-d", "--name", name, bb_image, "sh", "-c",
             "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done").strip()
    assert len(cid) == 64
    assert name in ok(daemon, "ps")
    assert cid[:12] in ok(daemon, "ps", "-a", "-q")
    time.sleep(0.3)
    assert ok(daemon, "logs", name) == "started\n"
    assert "sh -c" in ok(daemon, "top", name)
    assert ok(daemon, "exec", name, "cat", "/etc/hostname").strip() == cid[:12]
    assert daemon.docker("exec", name, "sh", "-c", "exit 7").returncode == 7
    ok(daemon, "pause", name)
    assert "(Paused)" in ok(daemon, "ps", "--filter", f"name={name}")
    ok(daemon, "unpause", name)
    ok(daemon, "stop", name)
    assert ok(daemon, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name) == \
        "exited 0\n"
    ok(daemon, "start", name)
    ok(daemon, "restart", "-t", "1", name)
    state = json.loads(ok(daemon, "inspect", name))[0]["State"]
    assert state["Running"] and state["Pid"] > 0
    ok(daemon, "rename", name, name + "2")
    ok(daemon, "kill", name + "2")
    assert ok(daemon, "wait", name + "2").strip() == "137"
    ok(daemon, "rm", "-f", name + "2")
    assert daemon.docker("inspect", name + "2").returncode == 1


def test_ids_names_and_prefixes_are_accepted(daemon: DaemonProcess, bb_image: str,
                                             name: str) -> None:
    cid = ok(daemon, "create", "--name", name, bb_image, "true").strip()
    for ref in (cid, cid[:12], cid[:5], name):
        assert ok(daemon, "inspect", "-f", "{{.Id}}", ref).strip() == cid
    ok(daemon, "rm", cid[:8])


def test_diff_commit_history_tag(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    ok(daemon, "run", "--name", name, bb_image, "sh", "-c",
       "mkdir /data && echo hi > /data/f && rm /bin/vi")
    diff = ok(daemon, "diff", name).splitlines()
    assert "A /data" in diff and "A /data/f" in diff and "D /bin/vi" in diff
    assert not any("hostname" in line for line in diff)
    image = f"{name}:snap"
    ok(daemon, "commit", "-m", "snapshot", name, image)
    history = ok(daemon, "history", image)
    assert "snapshot" in history
    ok(daemon, "tag", image, f"me/{name}:1")
    assert ok(daemon, "run", "--rm", f"me/{name}:1", "cat", "/data/f") == "hi\n"
    assert daemon.docker("run", "--rm", image, "ls", "/bin/vi").returncode != 0
    ok(daemon, "rm", name)
    ok(daemon, "rmi", f"me/{name}:1", image)


def test_cp_export_save_load(daemon: DaemonProcess, bb_image: str, name: str,
                             tmp_path: Path) -> None:
    ok(daemon, "run", "-d", "--name", name, bb_image, "sleep", "60")
    ok(daemon, "cp", f"{name}:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")
    (tmp_path / "in.txt").write_text("copied in\n")
    ok(daemon, "cp", str(tmp_path / "in.txt"), f"{name}:/tmp/")
    assert ok(daemon, "exec", name, "cat", "/tmp/in.txt") == "copied in\n"
    exported = daemon.docker("export", name).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(exported)) as tar:
        names = tar.getnames()
    assert "bin/busybox" in [n.lstrip("./") for n in names]
    saved = daemon.docker("save", bb_image).stdout
    assert ok(daemon, "load", input=saved).strip() == "Loaded image: bb:latest"
    ok(daemon, "rm", "-f", name)


def test_logs_rotate_by_default_options(daemon: DaemonProcess, bb_image: str,
                                        name: str) -> None:
    ok(daemon, "run", "--name", name, "--log-opt", "max-size=2k", "--log-opt", "max-file=2",
       bb_image, "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done")
    logs = ok(daemon, "logs", name).splitlines()
    assert logs[-1] == "line 299" and len(logs) < 300
    log_path = json.loads(ok(daemon, "inspect", name))[0]["LogPath"]
    assert os.path.getsize(log_path) <= 2048
    assert ok(daemon, "logs", "--tail", "2", name).splitlines() == ["line 298", "line 299"]
    ok(daemon, "rm", name)


def test_errors_are_docker_shaped(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    out = daemon.docker("inspect", "--type", "container", "nope-nothing")
    assert out.returncode == 1 and b"No such container: nope-nothing" in out.stderr
    out = daemon.docker("rm", "nope-nothing")
    assert b"No such container: nope-nothing" in out.stderr
    out = daemon.docker("create", "--name", "bad name!", bb_image)
    assert out.returncode != 0 and b"Invalid container name" in out.stderr
    ok(daemon, "create", "--name", name, bb_image, "true")
    out = daemon.docker("create", "--name", name, bb_image, "true")
    assert out.returncode != 0 and b"is already in use" in out.stderr
    ok(daemon, "rm", name)


def test_events_stream(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    since = str(int(time.time()) - 1)
    ok(daemon, "run", "--rm", "--name", name, bb_image, "true")
    until = str(int(time.time()) + 1)
    events = ok(daemon, "events", "--since", since, "--until", until, "--filter",
                f"container={name}", "--format", "{{.Action}}").split()
    for action in ("create", "start", "die", "destroy"):
        assert action in events


def test_system_df_and_images(daemon: DaemonProcess, bb_image: str) -> None:
    assert "Images" in ok(daemon, "system", "df")
    assert "bb" in ok(daemon, "images")


def test_memory_limit_oom_is_reported(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    ok(daemon, "run", "--name", name, "-m", "16m", "--memory-swap", "16m", bb_image, "sh",
       "-c", "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done") \
        if False else daemon.docker("run", "--name", name, "-m", "16m", bb_image, "sh", "-c",
                                    "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do "
                                    "x=$x$x; done")
    state = json.loads(ok(daemon, "inspect", name))[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    ok(daemon, "rm", name)


def test_limits_and_confinement(daemon: DaemonProcess, bb_image: str) -> None:
    quota = ok(daemon, "run", "--rm", "--cpus", "0.5", bb_image, "sh", "-c",
               "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max")
    assert quota.split()[0] == "50000"
    pids = daemon.docker("run", "--rm", "--pids-limit", "5", bb_image, "sh", "-c",
                         "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait")
    assert b"can't fork" in pids.stderr
    caps = ok(daemon, "run", "--rm", bb_image, "grep", "CapEff", "/proc/self/status")
    assert caps.split()[1] == "00000000a80425fb"
    assert ok(daemon, "run", "--rm", "--cap-drop", "ALL", bb_image, "grep", "CapEff",
              "/proc/self/status").split()[1] == "0000000000000000"
    assert daemon.docker("run", "--rm", "--read-only", bb_image, "touch", "/x").returncode == 1
    assert ok(daemon, "run", "--rm", "-u", "65534", bb_image, "id", "-u") == "65534\n"
    assert "1" in ok(daemon, "run", "--rm", "--security-opt", "no-new-privileges", bb_image,
                     "grep", "NoNewPrivs", "/proc/self/status")
    assert daemon.docker("run", "--rm", bb_image, "mount", "-t", "tmpfs", "x",
                         "/mnt").returncode != 0
    assert ok(daemon, "run", "--rm", "--privileged", bb_image, "sh", "-c",
              "mount -t tmpfs x /mnt && echo mounted") == "mounted\n"
    masked = daemon.docker("run", "--rm", bb_image, "cat", "/proc/kcore")
    assert masked.stdout == b""


def test_network_modes(daemon: DaemonProcess, bb_image: str) -> None:
    assert "lo" in ok(daemon, "run", "--rm", "--network", "none", bb_image, "ip", "-o", "link")
    host = ok(daemon, "run", "--rm", "--network", "host", bb_image, "hostname").strip()
    assert host == subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()


def test_runc_is_selectable(daemon: DaemonProcess, bb_image: str) -> None:
    if not __import__("shutil").which("runc"):
        pytest.skip("runc not installed")
    assert ok(daemon, "run", "--rm", "--runtime", "runc", bb_image, "echo", "via runc") == \
        "via runc\n"


def test_logs_follow_and_attach(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    ok(daemon, "run", "-d", "--name", name, bb_image, "sh", "-c",
       "for i in 1 2 3 4 5; do echo n$i; sleep 0.2; done")
    follow = daemon.docker("logs", "-f", "-t", name, timeout=30)
    lines = follow.stdout.decode().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [f"n{i}" for i in range(1, 6)]
    assert lines[0].split(" ", 1)[0].endswith("Z")
    ok(daemon, "start", name)
    attached = daemon.docker("attach", name, timeout=30)
    assert attached.returncode == 0 and b"n5" in attached.stdout
    ok(daemon, "rm", name)


def test_init_runs_tini_as_pid1(daemon: DaemonProcess, bb_image: str) -> None:
    if not os.path.exists("/usr/bin/tini-static"):
        pytest.skip("tini-static not installed")
    out = ok(daemon, "run", "--rm", "--init", bb_image, "cat", "/proc/1/cmdline")
    assert out.startswith("/sbin/docker-init")


def test_healthcheck_reports_status(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    ok(daemon, "run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ready",
       "--health-interval", "200ms", "--health-retries", "2", bb_image, "sh", "-c",
       "sleep 1; touch /tmp/ready; sleep 60")
    seen = []
    deadline = time.time() + 15
    while time.time() < deadline:
        status = ok(daemon, "inspect", "-f", "{{.State.Health.Status}}", name).strip()
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "healthy":
            break
        time.sleep(0.1)
    assert seen[-1] == "healthy", seen
    assert "(healthy)" in ok(daemon, "ps", "--filter", f"name={name}")
    ok(daemon, "rm", "-f", name)


def test_exec_into_a_container_sharing_anothers_namespaces(daemon: DaemonProcess,
                                                           bb_image: str, name: str) -> None:
    ok(daemon, "run", "-d", "--name", name, bb_image, "sleep", "600")
    try:
        ok(daemon, "run", "-d", "--name", f"{name}-b", "--pid", f"container:{name}",
           "--network", f"container:{name}", "--ipc", f"container:{name}", bb_image,
           "sleep", "601")
        procs = ok(daemon, "exec", f"{name}-b", "ps", "-o", "args")
        assert "sleep 600" in procs and "sleep 601" in procs
        assert ok(daemon, "exec", f"{name}-b", "hostname") == ok(daemon, "exec", name, "hostname")
    finally:
        daemon.docker("rm", "-f", f"{name}-b", name)
