"""Everyday ``docker ps --filter``/``--size``, events with labels, ``--add-host
host-gateway``, ``docker build -f -`` and intermediate images, through the real CLI."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess


def ok(daemon: DaemonProcess, *args: str, input: bytes | None = None) -> str:
    out = daemon.docker(*args, input=input)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


@pytest.fixture
def tag() -> Iterator[str]:
    yield "cs" + uuid.uuid4().hex[:8]


def names(daemon: DaemonProcess, tag: str, *filters: str) -> list[str]:
    args = ["ps", "-a", "--filter", f"label=sweep={tag}", "--format", "{{.Names}}"]
    for f in filters:
        args += ["--filter", f]
    return sorted(ok(daemon, *args).split())


def test_ps_filters(daemon: DaemonProcess, bb_image: str, tag: str) -> None:
    lab = ["--label", f"sweep={tag}"]
    net = tag + "-net"
    ok(daemon, "network", "create", net)
    try:
        assert daemon.docker("run", "--name", f"{tag}-a", *lab, bb_image, "sh", "-c",
                             "exit 3").returncode == 3
        ok(daemon, "create", "--name", f"{tag}-b", *lab, "-v", f"{tag}-vol:/data",
           "-p", "127.0.0.1:18931:80", "--expose", "90", bb_image, "true")
        ok(daemon, "run", "-d", "--name", f"{tag}-c", *lab, "--network", net,
           "--health-cmd", "true", "--health-interval", "1s", bb_image, "sleep", "60")
        a, b, c = f"{tag}-a", f"{tag}-b", f"{tag}-c"
        assert names(daemon, tag, f"network={net}") == [c]
        assert names(daemon, tag, f"volume={tag}-vol") == [b]
        assert names(daemon, tag, "volume=/data") == [b]
        assert names(daemon, tag, "publish=18931") == [b]
        assert names(daemon, tag, "publish=18900-18999/tcp") == [b]
        assert names(daemon, tag, "publish=18931/udp") == []
        assert names(daemon, tag, "expose=90") == [b]
        assert names(daemon, tag, "before=" + b) == [a]
        assert names(daemon, tag, "since=" + a) == [b, c]
        assert names(daemon, tag, "is-task=true") == []
        assert names(daemon, tag, "exited=3") == [a]
        for _ in range(50):
            if names(daemon, tag, "health=healthy") == [c]:
                break
            time.sleep(0.1)
        assert names(daemon, tag, "health=healthy") == [c]
        assert names(daemon, tag, "health=none") == [a, b]
        bad = daemon.docker("ps", "--filter", "before=no-such-container-x")
        assert bad.returncode == 1 and b"No such container" in bad.stderr
    finally:
        ids = ok(daemon, "ps", "-aq", "--filter", f"label=sweep={tag}").split()
        if ids:
            daemon.docker("rm", "-f", "-v", *ids)
        daemon.docker("network", "rm", net)
        daemon.docker("volume", "rm", f"{tag}-vol")


def test_ps_size_and_event_labels(daemon: DaemonProcess, bb_image: str, tag: str) -> None:
    name = tag + "-s"
    ok(daemon, "run", "-d", "--name", name, "--label", f"sweep={tag}", bb_image, "sh", "-c",
       "head -c 5000 /dev/zero > /blob; sleep 60")
    try:
        for _ in range(50):
            size = ok(daemon, "ps", "-s", "--filter", f"name={name}", "--format", "{{.Size}}")
            if size.startswith("5kB"):
                break
            time.sleep(0.1)
        assert size.startswith("5kB (virtual ")
        # --until is whole seconds (as for Docker): end after this second's events
        until = str(int(time.time()) + 1)
        events = ok(daemon, "events", "--since", "1m", "--until", until, "--filter",
                    f"label=sweep={tag}", "--format", "{{.Action}} {{index .Actor.Attributes "
                    "\"sweep\"}} {{.Actor.Attributes.name}}")
        assert f"create {tag} {name}" in events and f"start {tag} {name}" in events
    finally:
        daemon.docker("rm", "-f", name)


def test_add_host_host_gateway(daemon: DaemonProcess, bb_image: str) -> None:
    gateway = ok(daemon, "network", "inspect", "bridge", "-f",
                 "{{range .IPAM.Config}}{{.Gateway}}{{end}}").strip()
    hosts = ok(daemon, "run", "--rm", "--add-host", "host.docker.internal:host-gateway",
               bb_image, "cat", "/etc/hosts")
    assert f"{gateway}\thost.docker.internal" in hosts
    assert "host-gateway" not in hosts


def test_build_dockerfile_from_stdin_and_intermediates(daemon: DaemonProcess, bb_image: str,
                                                      tag: str, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("hi\n")
    dockerfile = f"FROM {bb_image}\nLABEL sweep={tag}\nCOPY file /file\n".encode()
    # the CLI adds the Dockerfile and a .dockerignore to the context tar, without padding
    # the last member or writing the end-of-archive blocks: Docker accepts that
    ok(daemon, "build", "-q", "-t", f"{tag}:1", "-f", "-", str(tmp_path), input=dockerfile)
    try:
        assert ok(daemon, "run", "--rm", f"{tag}:1", "cat", "/file") == "hi\n"
        listed = ok(daemon, "images", "--filter", f"label=sweep={tag}", "--format", "{{.Tag}}")
        assert listed.split() == ["1"]
        # the untagged parent (LABEL step) is an intermediate: only -a lists it
        dangling = ok(daemon, "images", "-q", "--filter", "dangling=true",
                      "--filter", f"label=sweep={tag}")
        assert dangling.split() == []
        every = ok(daemon, "images", "-a", "--filter", f"label=sweep={tag}",
                   "--format", "{{.Tag}}")
        assert sorted(every.split()) == ["1", "<none>"]
    finally:
        daemon.docker("rmi", f"{tag}:1")


def test_logs_details_attributes(daemon: DaemonProcess, bb_image: str, tag: str) -> None:
    name = tag + "-l"
    ok(daemon, "run", "--name", name, "--label", "team=x", "--log-opt", "labels=team",
       "--log-opt", "env=FOO", "-e", "FOO=b r", bb_image, "echo", "detailed")
    try:
        assert ok(daemon, "logs", "--details", name) == "FOO=b+r,team=x detailed\n"
        assert ok(daemon, "logs", name) == "detailed\n"
    finally:
        daemon.docker("rm", "-f", name)
