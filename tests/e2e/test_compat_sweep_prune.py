"""Prune filters (``until``, ``label``, ``label!``), ``inspect --size``, volume/network
events and ``system df`` shared sizes, through the real docker CLI and docker-py."""
from __future__ import annotations

import json
import time
import uuid

from dockyard.testing.daemon import DaemonProcess


def ok(daemon: DaemonProcess, *args: str) -> str:
    out = daemon.docker(*args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


def test_container_prune_honours_filters(daemon: DaemonProcess, bb_image: str) -> None:
    tag = "pr" + uuid.uuid4().hex[:8]
    keep, drop = f"{tag}-keep", f"{tag}-drop"
    ok(daemon, "create", "--name", keep, "--label", f"{tag}=keep", bb_image, "true")
    ok(daemon, "run", "--name", drop, "--label", f"{tag}=drop", bb_image, "sh", "-c",
       "head -c 3000 /dev/zero > /f")
    try:
        size = ok(daemon, "inspect", "-s", "-f", "{{.SizeRw}}", drop).strip()
        assert size == "3000"
        assert ok(daemon, "container", "prune", "-f", "--filter", "until=1h").count(tag) == 0
        out = ok(daemon, "container", "prune", "-f", "--filter", f"label={tag}",
                 "--filter", f"label!={tag}=keep")
        assert "Total reclaimed space: 3kB" in out
        left = ok(daemon, "ps", "-a", "--filter", f"label={tag}", "--format", "{{.Names}}")
        assert left.split() == [keep]
        bad = daemon.docker("container", "prune", "-f", "--filter", "bogus=1")
        assert bad.returncode == 1 and b"invalid filter 'bogus'" in bad.stderr
    finally:
        daemon.docker("rm", "-f", keep, drop)


def test_network_prune_label_and_events(daemon: DaemonProcess, bb_image: str) -> None:
    tag = "np" + uuid.uuid4().hex[:8]
    since = str(int(time.time()))
    ok(daemon, "network", "create", "--label", f"{tag}=1", f"{tag}-a")
    ok(daemon, "network", "create", f"{tag}-b")
    ok(daemon, "volume", "create", f"{tag}-v")
    ok(daemon, "run", "-d", "--name", f"{tag}-c", bb_image, "sleep", "60")
    try:
        ok(daemon, "network", "connect", f"{tag}-b", f"{tag}-c")
        ok(daemon, "network", "disconnect", f"{tag}-b", f"{tag}-c")
        ok(daemon, "volume", "rm", f"{tag}-v")
        out = ok(daemon, "network", "prune", "-f", "--filter", f"label={tag}")
        assert f"{tag}-a" in out and f"{tag}-b" not in out
        assert ok(daemon, "network", "ls", "-q", "--filter", f"name={tag}-b").strip()
        events = ok(daemon, "events", "--since", since, "--until", str(int(time.time()) + 1),
                    "--filter", "type=volume", "--filter", "type=network",
                    "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"
                    " {{.Actor.ID}}").splitlines()
        actions = [" ".join(line.split()[:2]) for line in events
                   if tag in line]
        for wanted in ("volume create", "network connect", "network disconnect",
                       "volume destroy", "network destroy"):
            assert wanted in actions, events
    finally:
        daemon.docker("rm", "-f", f"{tag}-c")
        daemon.docker("network", "rm", f"{tag}-a", f"{tag}-b")
        daemon.docker("volume", "rm", f"{tag}-v")


def test_image_prune_label_filter_and_df_shared_size(daemon: DaemonProcess, bb_image: str,
                                                     docker_client) -> None:  # type: ignore[no-untyped-def]
    tag = "ip" + uuid.uuid4().hex[:8]
    for n in ("keep", "drop"):
        out = daemon.docker("build", "-q", "-t", f"{tag}-{n}:1", "-",
                            input=f"FROM {bb_image}\nLABEL {tag}={n}\n".encode())
        assert out.returncode == 0, out.stderr.decode()
    try:
        report = docker_client.images.prune(filters={"dangling": False,
                                                     "label": [f"{tag}=drop"]})
        untagged = [d.get("Untagged") for d in report["ImagesDeleted"] or []]
        assert f"{tag}-drop:1" in untagged
        assert f"{tag}-keep:1" not in untagged
        df = docker_client.df()
        row = next(i for i in df["Images"] if f"{tag}-keep:1" in i["RepoTags"])
        assert row["SharedSize"] == row["Size"] > 0  # its only layer is the base image's
        assert df["LayersSize"] <= sum(i["Size"] for i in df["Images"])
        table = json.loads(ok(daemon, "system", "df", "--format", "{{json .}}").splitlines()[0])
        assert table["Type"] == "Images"
    finally:
        daemon.docker("rmi", f"{tag}-keep:1", f"{tag}-drop:1")
