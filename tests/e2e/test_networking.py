"""Networking through the real docker CLI and docker-py: the default bridge, published ports,
links, user-defined networks with DNS, isolation, and clean teardown."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from dockyard.testing.daemon import DaemonProcess


def ok(daemon: DaemonProcess, *args: str) -> str:
    out = daemon.docker(*args)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr.decode()}"
    return out.stdout.decode()


def fetch(url: str, attempts: int = 40) -> str:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {url}")


@pytest.fixture
def name() -> str:
    return "n" + uuid.uuid4().hex[:10]


def host_links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


def test_default_bridge_and_published_ports(daemon: DaemonProcess, bb_image: str,
                                            name: str) -> None:
    ok(daemon, "run", "-d", "--name", name, "-p", "127.0.0.1::80", "--expose", "81",
       "-P", bb_image, "httpd", "-f", "-p", "80", "-h", "/etc")
    info = json.loads(ok(daemon, "inspect", name))[0]
    address = info["NetworkSettings"]["IPAddress"]
    assert address and info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == address
    assert fetch(f"http://{address}/hostname").strip() == info["Id"][:12]
    port_line = ok(daemon, "port", name, "80/tcp").strip()
    host_port = port_line.rsplit(":", 1)[1]
    assert fetch(f"http://127.0.0.1:{host_port}/hostname").strip() == info["Id"][:12]
    assert "81/tcp" in ok(daemon, "port", name)
    assert f"127.0.0.1:{host_port}->80/tcp" in ok(daemon, "ps", "--filter", f"name={name}")
    veths_before = host_links().count("@")
    ok(daemon, "rm", "-f", name)
    assert host_links().count("@") < veths_before


def test_fixed_port_conflict_and_bad_spec(daemon: DaemonProcess, bb_image: str,
                                          name: str) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ok(daemon, "run", "-d", "--name", name, "-p", f"{port}:80", bb_image, "httpd", "-f",
       "-p", "80", "-h", "/etc")
    assert fetch(f"http://127.0.0.1:{port}/passwd").startswith("root:")
    clash = daemon.docker("run", "--rm", "-p", f"{port}:80", bb_image, "true")
    assert clash.returncode != 0 and b"port is already allocated" in clash.stderr
    assert b"driver failed programming external connectivity on endpoint" in clash.stderr
    bad = daemon.docker("run", "--rm", "-p", "abc:80", bb_image, "true")
    assert bad.returncode != 0
    ok(daemon, "rm", "-f", name)


def test_link_alias_resolves(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    ok(daemon, "run", "-d", "--name", name, bb_image, "httpd", "-f", "-p", "80", "-h", "/etc")
    out = ok(daemon, "run", "--rm", "--link", f"{name}:web", bb_image, "sh", "-c",
             "grep web /etc/hosts && wget -q -O - http://web/hostname")
    assert name in out or "web" in out
    ok(daemon, "rm", "-f", name)


def test_user_network_dns_aliases_and_isolation(daemon: DaemonProcess, bb_image: str,
                                                name: str) -> None:
    net, other = f"{name}-a", f"{name}-b"
    ok(daemon, "network", "create", net)
    ok(daemon, "network", "create", other)
    ok(daemon, "run", "-d", "--name", f"{name}-db", "--network", net, "--network-alias",
       "database", bb_image, "httpd", "-f", "-p", "80", "-h", "/etc")
    ok(daemon, "run", "-d", "--name", f"{name}-far", "--network", other, bb_image, "httpd",
       "-f", "-p", "80", "-h", "/etc")
    far_ip = json.loads(ok(daemon, "inspect", f"{name}-far"))[0]["NetworkSettings"][
        "Networks"][other]["IPAddress"]
    out = ok(daemon, "run", "--rm", "--network", net, bb_image, "sh", "-c",
             f"wget -q -O - http://{name}-db/hostname && wget -q -O - http://database/hostname"
             f" && (wget -q -T 2 -O - http://{far_ip}/hostname && echo REACHED || echo BLOCKED)")
    lines = out.split()
    assert lines[0] == lines[1] and lines[-1] == "BLOCKED"
    inspected = json.loads(ok(daemon, "network", "inspect", net))[0]
    assert inspected["Driver"] == "bridge" and len(inspected["Containers"]) == 1
    busy = daemon.docker("network", "rm", net)
    assert busy.returncode != 0 and b"active endpoints" in busy.stderr
    ok(daemon, "network", "connect", other, f"{name}-db")
    assert other in json.loads(ok(daemon, "inspect", f"{name}-db"))[0]["NetworkSettings"][
        "Networks"]
    ok(daemon, "network", "disconnect", other, f"{name}-db")
    bridges = [json.loads(ok(daemon, "network", "inspect", n))[0]["Id"][:12] for n in (net, other)]
    ok(daemon, "rm", "-f", f"{name}-db", f"{name}-far")
    ok(daemon, "network", "rm", net, other)
    assert net not in ok(daemon, "network", "ls")
    rules = "".join(subprocess.run(["iptables", *table, "-S"], capture_output=True,
                                   text=True).stdout for table in ([], ["-t", "nat"]))
    links = host_links()
    for short in bridges:  # the user bridges are named dy-<id prefix>
        assert short not in rules and short not in links


def test_network_errors(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    ok(daemon, "network", "create", "--subnet", "10.213.7.0/24", name)
    clash = daemon.docker("network", "create", "--subnet", "10.213.7.0/25", name + "x")
    assert clash.returncode != 0 and b"overlaps" in clash.stderr
    dup = daemon.docker("network", "create", name)
    assert dup.returncode != 0 and b"already exists" in dup.stderr
    missing = daemon.docker("run", "--rm", "--network", "no-such-net-x", bb_image, "true")
    assert missing.returncode != 0 and b"not found" in missing.stderr
    assert daemon.docker("network", "rm", "bridge").returncode != 0
    ip = ok(daemon, "run", "--rm", "--network", name, "--ip", "10.213.7.77", bb_image, "sh",
            "-c", "ip -4 -o addr show eth0")
    assert "10.213.7.77/24" in ip
    ok(daemon, "network", "rm", name)


def test_docker_py_networks(docker_client, bb_image: str, name: str) -> None:  # type: ignore[no-untyped-def]
    network = docker_client.networks.create(name, driver="bridge")
    try:
        c = docker_client.containers.run(bb_image, "sleep 30", detach=True, network=name,
                                         name=name)
        network.reload()
        assert c.id in network.attrs["Containers"]
        c.remove(force=True)
    finally:
        network.remove()


def daemon_rules(daemon: DaemonProcess) -> list[str]:
    """Every iptables rule in the daemon's own chains (filter and nat)."""
    out = "".join(subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                                 text=True).stdout for table in ("filter", "nat"))
    return [line for line in out.splitlines() if daemon.chain_prefix in line]


def state_of(daemon: DaemonProcess, name: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(ok(daemon, "inspect", name))[0]["State"]
    return state


def test_port_held_by_another_process(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        veths = host_links().count("@")
        failed = daemon.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80",
                               bb_image, "httpd", "-f", "-p", "80", "-h", "/etc")
        err = failed.stderr.decode()
        assert failed.returncode == 125, err
        assert f"driver failed programming external connectivity on endpoint {name} (" in err
        assert f"listen tcp4 127.0.0.1:{port}: bind: address already in use" in err
        assert not [r for r in daemon_rules(daemon) if f"--dport {port}" in r]
        assert host_links().count("@") == veths
        state = state_of(daemon, name)
        assert state["Status"] == "created" and "address already in use" in str(state["Error"])
        cid = json.loads(ok(daemon, "inspect", name))[0]["Id"]
        assert not (daemon.base / "run" / "netns" / cid[:16]).exists()
    finally:
        holder.close()
    ok(daemon, "start", name)  # the port is free now: the same container starts
    assert fetch(f"http://127.0.0.1:{port}/passwd").startswith("root:")
    assert state_of(daemon, name)["Error"] == ""
    assert [r for r in daemon_rules(daemon) if f"--dport {port}" in r]
    with socket.socket() as intruder:  # while published, the daemon holds the port
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            intruder.bind(("127.0.0.1", port))
    ok(daemon, "rm", "-f", name)
    assert not [r for r in daemon_rules(daemon) if f"--dport {port}" in r]
    with socket.socket() as again:  # removed: the port is released
        again.bind(("127.0.0.1", port))


def test_udp_port_held_by_another_process(daemon: DaemonProcess, bb_image: str,
                                          name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        failed = daemon.docker("run", "--rm", "-p", f"127.0.0.1:{port}:53/udp", bb_image,
                               "true")
        assert failed.returncode == 125
        assert f"listen udp4 127.0.0.1:{port}: bind: address already in use".encode() in \
            failed.stderr
        assert not [r for r in daemon_rules(daemon) if f"--dport {port}" in r]
        tcp = daemon.docker("run", "--rm", "-p", f"127.0.0.1:{port}:53/tcp", bb_image, "true")
        assert tcp.returncode == 0, tcp.stderr.decode()  # another protocol, another port


def test_link_errors(daemon: DaemonProcess, bb_image: str, name: str) -> None:
    missing = daemon.docker("run", "--name", f"{name}-x", "--link", f"{name}-none:web",
                            bb_image, "true")
    assert missing.returncode == 125
    assert f"could not get container for {name}-none".encode() in missing.stderr
    assert b"Unable to find image" not in missing.stderr  # a 400, not a 404: no pull
    assert daemon.docker("inspect", f"{name}-x").returncode != 0  # nothing was created
    ok(daemon, "create", "--name", f"{name}-db", bb_image, "httpd", "-f", "-p", "80",
       "-h", "/etc")
    veths = host_links().count("@")
    stopped = daemon.docker("run", "--name", f"{name}-web", "--link", f"{name}-db:db",
                            bb_image, "grep", "db", "/etc/hosts")
    expected = f"Cannot link to a non running container: /{name}-db AS /{name}-web/db"
    assert stopped.returncode != 0 and expected in stopped.stderr.decode()
    assert host_links().count("@") == veths
    state = state_of(daemon, f"{name}-web")
    assert state["Status"] == "created" and expected in str(state["Error"])
    ok(daemon, "start", f"{name}-db")
    ok(daemon, "start", f"{name}-web")
    assert ok(daemon, "wait", f"{name}-web").strip() == "0"
    assert "db" in ok(daemon, "logs", f"{name}-web")
    ok(daemon, "rm", "-f", f"{name}-db", f"{name}-web")
