"""The embedded DNS right after a container is replaced by another of the same name and alias
(what ``compose up`` does on a recreate): the name must resolve to the new container at once,
and stop resolving at once when the container is removed without a successor.

The old failure was not in the name registry: the bridge had no MAC of its own, so the kernel
gave it the lowest MAC among its ports, which changes as veths come and go; the other
containers' ARP entries for the gateway (where the DNS server listens) then pointed at a MAC
nobody answered for, and queries timed out until the entries expired. Host-side veth MACs
are random, so the test gives each new container's bridge port a MAC lower than any other
(a different one every round): without a fixed bridge MAC every round moves it.
"""
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from dockyard.testing.daemon import DaemonProcess

NET_ADDR_SET = "3"  # /sys/class/net/<dev>/addr_assign_type: the address was set explicitly


def ok(daemon: DaemonProcess, *args: str) -> str:
    out = daemon.docker(*args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


def address(daemon: DaemonProcess, container: str, net: str) -> str:
    info = json.loads(ok(daemon, "inspect", container))[0]
    return str(info["NetworkSettings"]["Networks"][net]["IPAddress"])


def ports(bridge: str) -> set[str]:
    return {p.name for p in Path(f"/sys/class/net/{bridge}/brif").iterdir()}


def mac(dev: str) -> str:
    return Path(f"/sys/class/net/{dev}/address").read_text().strip()


def assert_gone(daemon: DaemonProcess, client: str, *names: str) -> None:
    for target in names:
        got = daemon.docker("exec", client, "nslookup", target)
        out = got.stdout.decode() + got.stderr.decode()
        assert got.returncode != 0 and "NXDOMAIN" in out, f"{target}: {out}"


@pytest.fixture
def name() -> str:
    return "d" + uuid.uuid4().hex[:10]


def test_recreated_name_resolves_at_once(daemon: DaemonProcess, bb_image: str,
                                         name: str) -> None:
    net, a, c, bridge = f"{name}-net", f"{name}-a", f"{name}-c", f"br{name[:10]}"
    ok(daemon, "network", "create", "-o", f"com.docker.network.bridge.name={bridge}", net)
    try:
        assert Path(f"/sys/class/net/{bridge}/addr_assign_type").read_text().strip() \
            == NET_ADDR_SET
        bridge_mac = mac(bridge)
        ok(daemon, "run", "-d", "--name", c, "--network", net, bb_image, "sleep", "600")
        run_a = ("run", "-d", "--name", a, "--network", net, "--network-alias", "svc",
                 bb_image, "sleep", "600")
        others = ports(bridge)
        ok(daemon, *run_a)
        for i in range(4):
            if i % 2:
                ok(daemon, "stop", "-t", "0", a)
                ok(daemon, "rm", a)
            else:
                ok(daemon, "rm", "-f", a)
            ok(daemon, *run_a)
            (port,) = ports(bridge) - others
            subprocess.run(["ip", "link", "set", "dev", port, "address",
                            f"02:00:00:00:00:{i + 1:02x}"], check=True)
            assert mac(bridge) == bridge_mac, f"round {i}: the bridge's MAC moved"
            ip = address(daemon, a, net)
            for target in ("svc", a):  # the first query must already see the new address
                got = daemon.docker("exec", c, "nslookup", target)
                out = got.stdout.decode()
                assert got.returncode == 0 and ip in out, f"round {i}, {target}: {out}"
            pong = daemon.docker("exec", c, "ping", "-c1", "-W1", a)
            assert pong.returncode == 0, f"round {i}: {pong.stdout.decode()}"

        ok(daemon, "network", "disconnect", net, a)  # off the network: gone at once
        assert_gone(daemon, c, "svc", a)
        ok(daemon, "network", "connect", "--alias", "svc", net, a)
        got = daemon.docker("exec", c, "nslookup", "svc")
        assert got.returncode == 0 and address(daemon, a, net) in got.stdout.decode()
        ok(daemon, "rm", "-f", a)  # no successor: gone at once
        assert_gone(daemon, c, "svc", a)
    finally:
        daemon.docker("rm", "-f", a, c)
        daemon.docker("network", "rm", net)
