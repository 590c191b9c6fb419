"""``docker stats`` and ``docker update`` (GET /containers/{id}/stats, POST .../update),
through the real docker CLI and docker-py."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from dockyard.testing.daemon import DOCKER, DaemonProcess


def ok(daemon: DaemonProcess, *args: str) -> str:
    out = daemon.docker(*args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


@pytest.fixture
def busy(daemon: DaemonProcess, bb_image: str):  # type: ignore[no-untyped-def]
    name = "st" + uuid.uuid4().hex[:10]
    ok(daemon, "run", "-d", "--name", name, bb_image, "sh", "-c", "while :; do :; done")
    yield name
    daemon.docker("rm", "-f", name)


def test_stats_no_stream_and_stream(daemon: DaemonProcess, busy: str) -> None:
    fmt = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.PIDs}}"
    name, cpu, mem, net, pids = ok(daemon, "stats", "--no-stream", "--format", fmt,
                                   busy).strip().split("|")
    assert name == busy and pids == "1"
    assert float(cpu.rstrip("%")) > 10  # a busy loop, measured over two readings
    assert "B / " in mem and "--" not in net
    # streaming: several readings arrive until the client goes away
    proc = subprocess.Popen([DOCKER, "stats", "--format", "{{.Name}} {{.PIDs}}", busy],
                            env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=3.5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert out.decode().count(busy) >= 2


def test_update_limits_and_restart_policy(daemon: DaemonProcess, busy: str) -> None:
    assert ok(daemon, "update", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20",
              "--restart", "on-failure:3", busy).strip() == busy
    fmt = ("{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} "
           "{{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}} "
           "{{.HostConfig.RestartPolicy.MaximumRetryCount}}")
    assert ok(daemon, "inspect", "-f", fmt, busy).split() == [
        "67108864", "134217728", "500000000", "20", "on-failure", "3"]
    # enforced on the live cgroup: the limit shows in stats, the busy loop is throttled
    mem = ok(daemon, "stats", "--no-stream", "--format", "{{.MemUsage}}|{{.CPUPerc}}", busy)
    usage, cpu = mem.strip().split("|")
    assert usage.endswith("/ 64MiB")
    assert float(cpu.rstrip("%")) < 65
    # Docker's rule: raising memory above the swap limit already set needs --memory-swap
    bad = daemon.docker("update", "--memory", "1g", busy)
    assert bad.returncode == 1 and b"update the memoryswap at the same time" in bad.stderr
    ok(daemon, "update", "--memory", "1g", "--memory-swap", "2g", busy)


def test_update_restart_policy_of_autoremove_container(daemon: DaemonProcess,
                                                      bb_image: str) -> None:
    name = "ar" + uuid.uuid4().hex[:10]
    ok(daemon, "create", "--rm", "--name", name, bb_image, "true")
    try:
        out = daemon.docker("update", "--restart", "always", name)
        assert out.returncode == 1
        assert b"AutoRemove is enabled" in out.stderr
    finally:
        daemon.docker("rm", "-f", name)


def test_dockerpy_stats_update_and_inspect_defaults(docker_client, bb_image: str) -> None:  # type: ignore[no-untyped-def]
    c = docker_client.containers.run(bb_image, "sleep 60", detach=True)
    try:
        s = c.stats(stream=False)
        assert s["id"] == c.id and s["name"] == "/" + c.name
        assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0  # two readings
        assert s["memory_stats"]["usage"] > 0 and s["memory_stats"]["limit"] > 0
        assert s["pids_stats"]["current"] == 1
        stream = c.stats(stream=True, decode=True)
        first, second = next(stream), next(stream)
        assert first["read"] < second["read"]
        stream.close()
        assert c.attrs["HostConfig"]["Memory"] == 0  # always reported, as by Docker
        c.update(mem_limit="32m", memswap_limit="64m",
                 restart_policy={"Name": "unless-stopped"})
        c.reload()
        hc = c.attrs["HostConfig"]
        assert (hc["Memory"], hc["MemorySwap"]) == (32 << 20, 64 << 20)
        assert hc["RestartPolicy"]["Name"] == "unless-stopped"
        assert c.stats(stream=False)["memory_stats"]["limit"] == 32 << 20
        c.stop(timeout=0)
        empty = c.stats(stream=False)
        assert empty["read"].startswith("0001-") and empty["memory_stats"] == {}
    finally:
        c.remove(force=True)
