"""``swarm init|join|leave|join-token``: joining this daemon to a swarm, as docker does it."""
from __future__ import annotations

import argparse
import re
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError, invalid
from dockyard.cli.context import Context
from dockyard.cli.runflags import duration_ns, int64
from dockyard.client.errors import APIError
from dockyard.client.swarm import InitRequest, JoinRequest, SwarmAPI, empty_swarm_spec

DEFAULT_LISTEN = "0.0.0.0:2377"
NO_ADDRESS = ("could not choose an IP address to advertise",
              "could not find the system's IP address")


def node_addr(value: str, default: str = DEFAULT_LISTEN) -> str:
    """NodeAddrOption: ``[tcp://][host][:port]``, missing parts from ``0.0.0.0:2377``."""
    text = value.removeprefix("tcp://")
    if "://" in text or "/" in text:
        raise invalid(value, f"Invalid bind address format: {value}")
    default_host, _, default_port = default.rpartition(":")
    m = re.match(r"^(\[[^\]]*\]|[^:]*)(?::(\d*))?$", text)
    if not m:
        raise invalid(value, f"Invalid bind address format: {value}")
    host, port = m.group(1) or default_host, m.group(2) or default_port
    if not port.isdigit() or int(port) > 65535:
        raise invalid(value, f"Invalid bind address format: {value}")
    return f"{host}:{port}"


def swarm_api(ctx: Context) -> SwarmAPI:
    return SwarmAPI(ctx.client)


def print_join_command(ctx: Context, api: SwarmAPI, node_id: str, worker: bool,
                       manager: bool) -> None:
    """The ``docker swarm join --token …`` lines, from the node's manager address."""
    node = api.node(node_id)
    tokens = api.inspect().get("JoinTokens") or {}
    addr = (node.get("ManagerStatus") or {}).get("Addr")
    if not node.get("ManagerStatus"):
        return
    for wanted, role, key in ((worker, "worker", "Worker"), (manager, "manager", "Manager")):
        if wanted:
            ctx.stdout.write(f"To add a {role} to this swarm, run the following command:\n\n"
                             f"    docker swarm join --token {tokens.get(key, '')} {addr}\n\n")
    ctx.stdout.flush()


def _addr_flags(p: FlagParser) -> None:
    p.add_argument("--advertise-addr", default="",
                   help='Advertised address (format: "<ip|interface>[:port]")')
    p.add_argument("--availability", default="active",
                   help='Availability of the node ("active", "pause", "drain") '
                        '(default "active")')
    p.add_argument("--data-path-addr", default="", help='Address or interface to use for '
                   'data path traffic (format: "<ip|interface>")')
    p.add_argument("--listen-addr", type=node_addr, default=DEFAULT_LISTEN, metavar="node-addr",
                   help='Listen address (format: "<ip|interface>[:port]") '
                        '(default 0.0.0.0:2377)')


def _init_build(p: FlagParser) -> None:
    _addr_flags(p)
    p.add_argument("--autolock", action="store_true", help="Enable manager autolocking "
                   "(requiring an unlock key to start a stopped manager)")
    p.add_argument("--force-new-cluster", action="store_true",
                   help="Force create a new cluster from current state")


def _init(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    spec = empty_swarm_spec()
    if ns.autolock:
        spec["EncryptionConfig"] = {"AutoLockManagers": True}
    request = InitRequest(listen_addr=ns.listen_addr, advertise_addr=ns.advertise_addr,
                          data_path_addr=ns.data_path_addr,
                          force_new_cluster=ns.force_new_cluster, autolock=ns.autolock,
                          availability=ns.availability.lower(), spec=spec)
    try:
        node_id = api.init(request)
    except APIError as exc:
        if any(text in exc.message for text in NO_ADDRESS):
            raise StatusError(f"Error response from daemon: {exc.message} - specify one "
                              "with --advertise-addr") from None
        raise
    ctx.out(f"Swarm initialized: current node ({node_id}) is now a manager.\n")
    print_join_command(ctx, api, node_id, worker=True, manager=False)
    ctx.out("To add a manager to this swarm, run 'docker swarm join-token manager' and follow "
            "the instructions.\n")
    return 0


def _join_build(p: FlagParser) -> None:
    _addr_flags(p)
    p.add_argument("--token", default="", help="Token for entry into the swarm")


def _join(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    api.join(JoinRequest(remote_addrs=[ns.args[0]], join_token=ns.token,
                         listen_addr=ns.listen_addr, advertise_addr=ns.advertise_addr,
                         data_path_addr=ns.data_path_addr,
                         availability=ns.availability.lower()))
    info = api.info().get("Swarm") or {}
    role = "manager" if info.get("ControlAvailable") else "worker"
    ctx.out(f"This node joined a swarm as a {role}.")
    return 0


def _leave_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force this node to leave the swarm, ignoring warnings")


def _leave(ctx: Context, ns: argparse.Namespace) -> int:
    swarm_api(ctx).leave(ns.force)
    ctx.out("Node left the swarm.")
    return 0


def _token_build(p: FlagParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="Only display token")
    p.add_argument("--rotate", action="store_true", help="Rotate join token")


def _join_token(ctx: Context, ns: argparse.Namespace) -> int:
    role = ns.args[0]
    worker, manager = role == "worker", role == "manager"
    if not (worker or manager):
        raise StatusError(f"unknown role {role}")
    api = swarm_api(ctx)
    if ns.rotate:
        current = api.inspect()
        api.update(int((current.get("Version") or {}).get("Index", 0)),
                   current.get("Spec") or {}, rotate_worker=worker, rotate_manager=manager)
        if not ns.quiet:
            ctx.out(f"Successfully rotated {role} join token.\n")
    tokens = api.inspect().get("JoinTokens") or {}
    if ns.quiet:
        ctx.out(str(tokens.get("Worker" if worker else "Manager", "")))
        return 0
    node_id = str((api.info().get("Swarm") or {}).get("NodeID", ""))
    print_join_command(ctx, api, node_id, worker, manager)
    return 0


def go_bool(value: str) -> bool:
    """A pflag bool value, as strconv.ParseBool reads it."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise invalid(value, f'strconv.ParseBool: parsing "{value}": invalid syntax')


def _update_build(p: FlagParser) -> None:
    p.add_argument("--autolock", nargs="?", const=True, default=None, type=go_bool,
                   metavar="",
                   help="Change manager autolocking setting (true|false)")
    p.add_argument("--cert-expiry", type=duration_ns, default=None,
                   help="Validity period for node certificates (ns|us|ms|s|m|h) "
                        "(default 2160h0m0s)")
    p.add_argument("--dispatcher-heartbeat", type=duration_ns, default=None,
                   help="Dispatcher heartbeat period (ns|us|ms|s|m|h) (default 5s)")
    p.add_argument("--external-ca", action="append", default=[], metavar="external-ca",
                   help="Specifications of one or more certificate signing endpoints")
    p.add_argument("--max-snapshots", type=int64, default=None, metavar="uint",
                   help="Number of additional Raft snapshots to retain")
    p.add_argument("--snapshot-interval", type=int64, default=None, metavar="uint",
                   help="Number of log entries between Raft snapshots (default 10000)")
    p.add_argument("--task-history-limit", type=int64, default=None,
                   help="Task history retention limit (default 5)")


def _section(spec: dict[str, Any], key: str) -> dict[str, Any]:
    spec[key] = dict(spec.get(key) or {})
    return spec[key]  # type: ignore[no-any-return]


def _update(ctx: Context, ns: argparse.Namespace) -> int:
    """mergeSwarm: only the flags given change the swarm's current spec."""
    api = swarm_api(ctx)
    current = api.inspect()
    spec = dict(current.get("Spec") or {})
    if ns.autolock is not None:
        _section(spec, "EncryptionConfig")["AutoLockManagers"] = ns.autolock
    for value, section, key in ((ns.task_history_limit, "Orchestration",
                                 "TaskHistoryRetentionLimit"),
                                (ns.dispatcher_heartbeat, "Dispatcher", "HeartbeatPeriod"),
                                (ns.cert_expiry, "CAConfig", "NodeCertExpiry"),
                                (ns.snapshot_interval, "Raft", "SnapshotInterval"),
                                (ns.max_snapshots, "Raft", "KeepOldSnapshots")):
        if value is not None:
            _section(spec, section)[key] = value
    if ns.external_ca:
        _section(spec, "CAConfig")["ExternalCAs"] = [{"Protocol": "cfssl", "URL": v}
                                                     for v in ns.external_ca]
    api.update(int((current.get("Version") or {}).get("Index", 0)), spec)
    ctx.out("Swarm updated.")
    return 0


def _ca_build(p: FlagParser) -> None:
    p.add_argument("--ca-cert", default="", metavar="pem-file",
                   help="Path to the PEM-formatted root CA certificate to use for the new "
                        "cluster")
    p.add_argument("--ca-key", default="", metavar="pem-file",
                   help="Path to the PEM-formatted root CA key to use for the new cluster")
    p.add_argument("--cert-expiry", type=duration_ns, default=None,
                   help="Validity period for node certificates (ns|us|ms|s|m|h) "
                        "(default 2160h0m0s)")
    p.add_argument("-d", "--detach", action="store_true",
                   help="Exit immediately instead of waiting for the root rotation to "
                        "converge")
    p.add_argument("--external-ca", action="append", default=[], metavar="external-ca",
                   help="Specifications of one or more certificate signing endpoints")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")
    p.add_argument("--rotate", action="store_true",
                   help="Rotate the swarm CA - if no certificate or key are provided, new "
                        "ones will be generated")


def _ca(ctx: Context, ns: argparse.Namespace) -> int:
    """As docker's: the root CA is shown (dockyard has none), a rotation asked of the daemon
    (which refuses it)."""
    api = swarm_api(ctx)
    current = api.inspect()
    if not ns.rotate:
        for flag, value in (("ca-cert", ns.ca_cert), ("ca-key", ns.ca_key),
                            ("cert-expiry", ns.cert_expiry), ("external-ca", ns.external_ca)):
            if value:
                raise StatusError(f"`--{flag}` flag requires the `--rotate` flag to update "
                                  "the CA")
        trust = str((current.get("TLSInfo") or {}).get("TrustRoot") or "")
        if not trust:
            raise StatusError("No CA information available")
        ctx.out(trust.strip())
        return 0
    spec = dict(current.get("Spec") or {})
    ca = _section(spec, "CAConfig")
    ca["ForceRotate"] = int(ca.get("ForceRotate") or 0) + 1
    api.update(int((current.get("Version") or {}).get("Index", 0)), spec)
    return 0


INIT = Command("init", "[OPTIONS]", "Initialize a swarm", _init_build, _init)
JOIN = Command("join", "[OPTIONS] HOST:PORT", "Join a swarm as a node and/or manager",
               _join_build, _join, (1, 1))
LEAVE = Command("leave", "[OPTIONS]", "Leave the swarm", _leave_build, _leave)
JOIN_TOKEN = Command("join-token", "[OPTIONS] (worker|manager)", "Manage join tokens",
                     _token_build, _join_token, (1, 1))
UPDATE = Command("update", "[OPTIONS]", "Update the swarm", _update_build, _update)
CA = Command("ca", "[OPTIONS]", "Display and rotate the root CA", _ca_build, _ca)
SWARM = {c.name: c for c in (INIT, JOIN, LEAVE, JOIN_TOKEN, UPDATE, CA)}
