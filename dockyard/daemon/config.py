"""Daemon configuration: dockerd-style flags, with defaults for the embedded default setup."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SOCKET = "unix:///run/dockyard/dockyard.sock"


@dataclass(frozen=True)
class DaemonConfig:
    hosts: tuple[str, ...] = (DEFAULT_SOCKET,)
    data_root: Path = Path("/var/lib/dockyard")
    exec_root: Path = Path("/run/dockyard")
    pidfile: Path | None = None
    group: str = "dockyard"
    default_runtime: str = "crun"
    runtimes: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = "dockyard"
    debug: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    bridge: str = "dockyard0"
    bridge_subnet: str | None = None
    insecure_registries: tuple[str, ...] = ()
    offline: bool = False  # --bip / --fixed-cidr style: the default bridge's subnet
    chain_prefix: str = "DOCKYARD"
    ip_forward: bool = True
    swarm_data_port: int = 4789  # this node's VXLAN (UDP) port for overlay networks
    swarm_publish_addr: str = "0.0.0.0"  # where the routing mesh's published ports listen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard daemon", description="Run the dockyard engine")
    p.add_argument("-H", "--host", action="append", dest="hosts",
                   help=f"daemon socket(s) to connect to (default {DEFAULT_SOCKET})")
    p.add_argument("--data-root", default="/var/lib/dockyard", help="root of persistent state")
    p.add_argument("--exec-root", default="/run/dockyard", help="root of execution state")
    p.add_argument("-p", "--pidfile", default=None, help="path to use for the daemon PID file")
    p.add_argument("-G", "--group", default="dockyard", help="group for the unix socket")
    p.add_argument("--default-runtime", default="crun", help="default OCI runtime")
    p.add_argument("--add-runtime", action="append", default=[], metavar="NAME=PATH",
                   help="register an additional OCI runtime")
    p.add_argument("--cgroup-parent", default="dockyard", help="parent cgroup for containers")
    p.add_argument("-D", "--debug", action="store_true", help="enable debug logging")
    p.add_argument("--tlscert", default=None)
    p.add_argument("--tlskey", default=None)
    p.add_argument("--tlscacert", default=None)
    p.add_argument("--tlsverify", action="store_true")
    p.add_argument("-b", "--bridge", default="dockyard0",
                   help="device of the default bridge network")
    p.add_argument("--offline", action="store_true",
                   help="only talk to registries on this machine (tests, air-gapped hosts)")
    p.add_argument("--insecure-registry", action="append", default=[],
                   help="registry (host[:port] or CIDR) to reach over plain HTTP")
    p.add_argument("--bip", default=None, metavar="CIDR",
                   help="subnet of the default bridge network (default 172.30.0.0/16)")
    p.add_argument("--iptables-chain", default="DOCKYARD",
                   help="prefix of our iptables chains (must start with DOCKYARD)")
    p.add_argument("--ip-forward", default="true",
                   help="enable net.ipv4.ip_forward (true|false)")
    p.add_argument("--swarm-data-port", type=int, default=4789, metavar="PORT",
                   help="UDP port of this node's overlay (VXLAN) traffic (default 4789)")
    p.add_argument("--swarm-publish-addr", default="0.0.0.0", metavar="IP",
                   help="address the routing mesh's published ports listen on (default "
                        "0.0.0.0: every address)")
    return p


def from_args(argv: list[str]) -> DaemonConfig:
    args = parser().parse_args(argv)
    try:
        import ipaddress
        ipaddress.ip_address(args.swarm_publish_addr)
    except ValueError:
        parser().error(f"invalid --swarm-publish-addr {args.swarm_publish_addr!r}: want an IP "
                       "address")
    runtimes = {}
    for item in args.add_runtime:
        name, sep, path = item.partition("=")
        if not sep:
            parser().error(f"invalid --add-runtime {item!r}: want NAME=PATH")
        runtimes[name] = path
    return DaemonConfig(
        hosts=tuple(args.hosts or [DEFAULT_SOCKET]), data_root=Path(args.data_root),
        exec_root=Path(args.exec_root), pidfile=Path(args.pidfile) if args.pidfile else None,
        group=args.group, default_runtime=args.default_runtime, runtimes=runtimes,
        cgroup_parent=args.cgroup_parent, debug=args.debug,
        tls_cert=Path(args.tlscert) if args.tlscert else None,
        tls_key=Path(args.tlskey) if args.tlskey else None,
        tls_ca=Path(args.tlscacert) if args.tlscacert else None, bridge=args.bridge,
        chain_prefix=args.iptables_chain, ip_forward=args.ip_forward.lower() != "false",
        bridge_subnet=_network_of(args.bip) if args.bip else None,
        insecure_registries=tuple(args.insecure_registry), offline=args.offline,
        swarm_data_port=args.swarm_data_port, swarm_publish_addr=args.swarm_publish_addr)


def _network_of(cidr: str) -> str:
    """``--bip 10.9.0.1/24`` (Docker gives the gateway address) → ``10.9.0.0/24``."""
    import ipaddress
    try:
        return str(ipaddress.IPv4Interface(cidr).network)
    except ValueError:
        parser().error(f"invalid --bip {cidr!r}: want CIDR notation")
        raise
