"""``node ls|inspect|rm|update``: the swarm's nodes, through a manager."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.containers import for_each
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve
from dockyard.cli.inspect import inspect_all
from dockyard.cli.listopts import add_filter, filters_of, kv_map
from dockyard.cli.swarm import swarm_api
from dockyard.cli.swarmfmt import NODE_FORMAT, NODE_HEADERS, NodeContext, choose, natural_key
from dockyard.cli.swarmpretty import node_pretty
from dockyard.client.errors import APIError
from dockyard.client.swarm import SwarmAPI

FORMAT_HELP = "Format output using a custom template"


def filter_flag(p: FlagParser) -> None:
    add_filter(p, "-f", "--filter", help="Filter output based on conditions provided")


def node_reference(api: SwarmAPI, ref: str) -> str:
    """``self`` is this daemon's node (from ``GET /info``)."""
    if ref != "self":
        return ref
    node_id = str((api.info().get("Swarm") or {}).get("NodeID") or "")
    if not node_id:
        api.nodes()  # a swarm endpoint says why (not a manager, not in a swarm)
        raise StatusError("node ID not found in /info")
    return node_id


def _ls_build(p: FlagParser) -> None:
    filter_flag(p)
    p.add_argument("--format", default=None, help=FORMAT_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")


def _ls(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    nodes = api.nodes(filters_of(ns.filter))
    info = (api.info().get("Swarm") or {}) if nodes and not ns.quiet else {}
    nodes.sort(key=lambda n: natural_key(str((n.get("Description") or {}).get("Hostname", ""))))
    rows = [NodeContext(n, info) for n in nodes]
    fmt = resolve(choose(ns.format, ns.quiet, NODE_FORMAT), NODE_FORMAT)
    ctx.stdout.write(render(fmt, rows, NODE_HEADERS))
    return 0


def _inspect_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help=FORMAT_HELP)
    p.add_argument("--pretty", action="store_true",
                   help="Print the information in a human friendly format")


def _inspect(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    fmt = "pretty" if ns.pretty else ns.format
    if fmt and fmt.startswith("pretty") and fmt != "pretty":
        raise StatusError("cannot supply extra formatting options to the pretty template")
    if fmt != "pretty":
        try:
            refs = [node_reference(api, r) for r in ns.args]
        except APIError as exc:
            raise StatusError(f"Error response from daemon: {exc.message}") from None
        return inspect_all(ctx, refs, ("node",), fmt)
    for ref in ns.args:
        try:
            node = api.node(node_reference(api, ref))
        except APIError as exc:
            raise StatusError(f"Error response from daemon: {exc.message}") from None
        ctx.stdout.write(node_pretty(node))
    ctx.stdout.flush()
    return 0


def _rm_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true",
                   help="Force remove a node from the swarm")


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    return for_each(ctx, ns.args, lambda ref: api.remove_node(ref, ns.force))


def _update_build(p: FlagParser) -> None:
    p.add_argument("--availability", default=None,
                   help='Availability of the node ("active", "pause", "drain")')
    p.add_argument("--label-add", action="append", default=[], metavar="list",
                   help='Add or update a node label ("key=value")')
    p.add_argument("--label-rm", action="append", default=[], metavar="list",
                   help="Remove a node label if exists")
    p.add_argument("--role", default=None, help='Role of the node ("worker", "manager")')


def merge_node_spec(spec: dict[str, Any], ns: argparse.Namespace) -> dict[str, Any]:
    """mergeNodeUpdate: role, availability, then labels added and removed."""
    out = dict(spec)
    if ns.role is not None:
        out["Role"] = ns.role
    if ns.availability is not None:
        out["Availability"] = ns.availability
    labels = dict(out.get("Labels") or {})
    labels.update(kv_map(ns.label_add))
    for key in ns.label_rm:
        if key not in labels:
            raise StatusError(f"key {key} doesn't exist in node's labels")
        del labels[key]
    out["Labels"] = labels
    return out


def _update(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    ref = ns.args[0]
    node = api.node(ref)
    spec = merge_node_spec(dict(node.get("Spec") or {}), ns)
    api.update_node(str(node.get("ID", ref)), int((node.get("Version") or {}).get("Index", 0)),
                    spec)
    ctx.out(ref)
    return 0


def _no_flags(p: FlagParser) -> None:
    pass


def _change_role(role: str, already: str, done: str) -> Callable[[Context, argparse.Namespace],
                                                                 int]:
    """``node promote|demote``: docker's updateNodes — each node inspected, its role set,
    stopping at the first error."""
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        api = swarm_api(ctx)
        for ref in ns.args:
            try:
                node = api.node(ref)
                spec = dict(node.get("Spec") or {})
                if spec.get("Role") == role:
                    ctx.out(already.format(ref))
                    continue
                api.update_node(str(node.get("ID", ref)),
                                int((node.get("Version") or {}).get("Index", 0)),
                                {**spec, "Role": role})
            except APIError as exc:
                raise StatusError(f"Error response from daemon: {exc.message}") from None
            ctx.out(done.format(ref))
        return 0
    return run


LS = Command("ls", "[OPTIONS]", "List nodes in the swarm", _ls_build, _ls, aliases=("list",))
INSPECT = Command("inspect", "[OPTIONS] self|NODE [NODE...]",
                  "Display detailed information on one or more nodes", _inspect_build,
                  _inspect, (1, None))
RM = Command("rm", "[OPTIONS] NODE [NODE...]", "Remove one or more nodes from the swarm",
             _rm_build, _rm, (1, None), aliases=("remove",))
UPDATE = Command("update", "[OPTIONS] NODE", "Update a node", _update_build, _update, (1, 1))
PROMOTE = Command("promote", "NODE [NODE...]", "Promote one or more nodes to manager in the "
                  "swarm", _no_flags, _change_role("manager", "Node {} is already a manager.",
                                                   "Node {} promoted to a manager in the "
                                                   "swarm."), (1, None))
DEMOTE = Command("demote", "NODE [NODE...]", "Demote one or more nodes from manager in the "
                 "swarm", _no_flags, _change_role("worker", "Node {} is already a worker.",
                                                  "Manager {} demoted in the swarm."), (1, None))
NODE = {"ls": LS, "list": LS, "inspect": INSPECT, "rm": RM, "remove": RM, "update": UPDATE,
        "promote": PROMOTE, "demote": DEMOTE}
