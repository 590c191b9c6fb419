"""``dockyard network …`` and ``dockyard volume …`` against a real daemon, compared with the
docker CLI's output (stdout, stderr and exit status)."""
from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from dockyard.testing.daemon import DaemonProcess
from tests.e2e.test_cli import dk, dy, ok, same_output


def result(proc: subprocess.CompletedProcess[bytes], *subst: tuple[str, str]) -> tuple[
        str, str, int]:
    out, err = proc.stdout.decode(), proc.stderr.decode().replace("dockyard", "docker")
    for old, new in subst:
        out, err = out.replace(old, new), err.replace(old, new)
    return out, err, proc.returncode


def same_result(daemon: DaemonProcess, *args: str, input: bytes | None = None) -> tuple[
        str, str, int]:
    """Both CLIs print the same on stdout and stderr and exit alike (for failures and
    commands without timestamps)."""
    theirs = result(dk(daemon, *args, input=input))
    ours = result(dy(daemon, *args, input=input))
    assert ours == theirs, f"dockyard {' '.join(args)} differs from docker"
    return ours


@pytest.fixture
def tag() -> str:
    return "nv" + uuid.uuid4().hex[:10]


@pytest.fixture
def cleanup(daemon: DaemonProcess) -> Iterator[dict[str, list[str]]]:
    made: dict[str, list[str]] = {"network": [], "volume": []}
    yield made
    if made["network"]:
        dk(daemon, "network", "rm", *made["network"])
    if made["volume"]:
        dk(daemon, "volume", "rm", "-f", *made["volume"])


def test_network_ls_inspect_create_rm(daemon: DaemonProcess, tag: str,
                                      cleanup: dict[str, list[str]]) -> None:
    first, second = f"{tag}-a", f"{tag}-b"
    cleanup["network"] += [first, second]
    # one label each: docker prints a map's labels in Go's random order, we sort them
    ok(dy(daemon, "network", "create", "--label", f"tag={tag}", "--subnet", "10.231.7.0/24", "--gateway", "10.231.7.1", "--internal", first))
    ok(dk(daemon, "network", "create", "--attachable", "-o", "com.docker.network.driver.mtu=1400",
          "--label", f"tag={tag}", second))
    fields = "{{.Name}} {{.Driver}} {{.Internal}} {{.Attachable}} {{json .IPAM.Config}} " \
             "{{json .Labels}} {{json .Options}}"
    assert ok(dk(daemon, "network", "inspect", "-f", fields, first)).split(" ", 2)[:2] == \
        [first, "bridge"]
    for args in (["network", "ls"], ["network", "ls", "-q"], ["network", "ls", "--no-trunc"],
                 ["network", "list", "--format", "json"],
                 ["network", "ls", "-f", f"label=tag={tag}", "--format",
                  "table {{.Name}}\t{{.Labels}}\t{{.Internal}}\t{{.IPv6}}\t{{.CreatedAt}}"],
                 ["network", "ls", "--format", "raw"], ["network", "ls", "-f", f"name={tag}"],
                 ["network", "ls", "--format", "{{.Name}}", "-q"],
                 ["network", "inspect", first, second, "bridge"],
                 ["network", "inspect", "-f", fields, first, second],
                 ["network", "inspect", "-f", "json", second]):
        same_output(daemon, *args)
    for args in (["network", "create", first], ["network", "create"],
                 ["network", "create", "--label", "", "x"],
                 ["network", "create", "--gateway", "10.1.0.1", "x"],
                 ["network", "create", "--subnet", "10.5.0.0/16", "--ip-range", "10.6.0.0/24",
                  "x"],
                 ["network", "create", "--subnet", "10.0.0.0/8,10.1.0.0/16", "x"],
                 ["network", "ls", "-f", "nofilter"], ["network", "inspect", f"{tag}-no", first],
                 ["network", "inspect", "-f", "{{.Name}}", f"{tag}-no"],
                 ["network", "rm", f"{tag}-no", f"{tag}-no2"],
                 ["network", "rm", "-f", f"{tag}-no"],
                 ["network", "connect", first, f"{tag}-no"],
                 ["network", "disconnect", first, f"{tag}-no"]):
        same_result(daemon, *args)
    assert result(dy(daemon, "network", "rm", first)) == (f"{first}\n", "", 0)
    assert result(dk(daemon, "network", "rm", second)) == (f"{second}\n", "", 0)
    cleanup["network"].clear()


def test_network_prune(daemon: DaemonProcess, tag: str, cleanup: dict[str, list[str]]) -> None:
    name = f"{tag}-p"
    cleanup["network"].append(name)
    scoped = ["--filter", f"label=tag={tag}"]
    outputs = []
    for cli in (dk, dy):
        ok(dk(daemon, "network", "create", "--label", f"tag={tag}", name))
        assert result(cli(daemon, "network", "prune", *scoped, input=b"n\n"))[0::2] == (
            "WARNING! This will remove all custom networks not used by at least one "
            "container.\nAre you sure you want to continue? [y/N] ", 0)
        outputs.append(result(cli(daemon, "network", "prune", *scoped, input=b"y\n")))
    assert outputs[0] == outputs[1]
    assert outputs[1][0].endswith(f"Deleted Networks:\n{name}\n\n")
    cleanup["network"].clear()
    same_result(daemon, "network", "prune", "-f", *scoped)


def test_volume_ls_inspect_create_rm(daemon: DaemonProcess, tag: str,
                                     cleanup: dict[str, list[str]]) -> None:
    names = [f"{tag}-v1", f"{tag}-v10", f"{tag}-v2"]
    cleanup["volume"] += names
    assert result(dy(daemon, "volume", "create", "--label", f"tag={tag}", names[0])) == (
        f"{names[0]}\n", "", 0)
    assert result(dy(daemon, "volume", "create", "-d", "local", "-o", "type=tmpfs",
                     "-o", "device=tmpfs", "--name", names[1])) == (f"{names[1]}\n", "", 0)
    ok(dk(daemon, "volume", "create", "--label", f"tag={tag}", names[2]))
    anonymous = ok(dy(daemon, "volume", "create")).strip()  # labelled anonymous only
    cleanup["volume"].append(anonymous)
    assert len(anonymous) == 64
    fields = "{{.Name}} {{.Driver}} {{json .Labels}} {{json .Options}} {{.Scope}}"
    for args in (["volume", "ls"], ["volume", "ls", "-q"], ["volume", "list", "--format", "json"],
                 ["volume", "ls", "-f", f"name={tag}", "--format",
                  "table {{.Name}}\t{{.Labels}}\t{{.Mountpoint}}\t{{.Links}}\t{{.Size}}"],
                 ["volume", "ls", "-f", f"label=tag={tag}"], ["volume", "ls", "--format", "raw"],
                 ["volume", "ls", "--cluster"],
                 ["volume", "inspect", *names], ["volume", "inspect", "-f", fields, *names],
                 ["volume", "inspect", "-f", "json", names[1]]):
        same_output(daemon, *args)
    for args in (["volume", "create", "--name", "a", "b"],
                 ["volume", "create", "--label", "=x"], ["volume", "ls", "-f", "nofilter"],
                 ["volume", "inspect", f"{tag}-no", names[0]],
                 ["volume", "inspect", "-f", "{{.Name}}", f"{tag}-no"],
                 ["volume", "rm", f"{tag}-no", f"{tag}-no2"]):
        same_result(daemon, *args)
    assert result(dy(daemon, "volume", "rm", names[0], f"{tag}-no")) == (
        f"{names[0]}\n", f"Error response from daemon: get {tag}-no: no such volume\n", 1)
    assert result(dk(daemon, "volume", "rm", names[1])) == (f"{names[1]}\n", "", 0)


def test_volume_prune(daemon: DaemonProcess, tag: str, cleanup: dict[str, list[str]]) -> None:
    scoped = ["--filter", f"label=tag={tag}"]
    named = f"{tag}-named"
    cleanup["volume"].append(named)
    warning = "WARNING! This will remove {} local volumes not used by at least one container." \
              "\nAre you sure you want to continue? [y/N] "
    outputs = []
    for cli in (dk, dy):
        anonymous = ok(dk(daemon, "volume", "create", "--label", f"tag={tag}")).strip()
        cleanup["volume"].append(anonymous)
        ok(dk(daemon, "volume", "create", "--label", f"tag={tag}", named))
        assert result(cli(daemon, "volume", "prune", *scoped, input=b"n\n")) == (
            warning.format("anonymous"), "", 0)
        assert result(cli(daemon, "volume", "prune", "-a", *scoped, input=b"\n")) == (
            warning.format("all"), "", 0)
        out = result(cli(daemon, "volume", "prune", "-f", *scoped), (anonymous, "ANON"))
        assert out[0] == "Deleted Volumes:\nANON\n\nTotal reclaimed space: 0B\n"
        out_all = result(cli(daemon, "volume", "prune", "-a", *scoped, input=b"y\n"))
        outputs.append((out, out_all))
    assert outputs[0] == outputs[1]
    assert outputs[1][1][0].endswith(f"Deleted Volumes:\n{named}\n\nTotal reclaimed space: 0B\n")
    same_result(daemon, "volume", "prune", "-f", *scoped)
    same_result(daemon, "volume", "prune", "-af", "--filter", "all=1")
