"""``service ls|ps|inspect``: reading services and their tasks."""
from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve
from dockyard.cli.inspect import inspect_all
from dockyard.cli.nodes import FORMAT_HELP, filter_flag, node_reference
from dockyard.cli.listopts import filters_of
from dockyard.cli.swarm import swarm_api
from dockyard.cli.swarmfmt import (SERVICE_FORMAT, SERVICE_HEADERS, TASK_FORMAT, TASK_HEADERS,
                                   ServiceContext, TaskContext, choose, natural_key)
from dockyard.cli.swarmpretty import service_pretty
from dockyard.cli.units import parse_rfc3339
from dockyard.client.errors import APIError
from dockyard.client.swarm import SwarmAPI

Wire = Mapping[str, Any]


def _ls_build(p: FlagParser) -> None:
    filter_flag(p)
    p.add_argument("--format", default=None, help=FORMAT_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")


def _ls(ctx: Context, ns: argparse.Namespace) -> int:
    services = swarm_api(ctx).services(filters_of(ns.filter), status=not ns.quiet)
    services.sort(key=lambda s: natural_key(str((s.get("Spec") or {}).get("Name", ""))))
    fmt = resolve(choose(ns.format, ns.quiet, SERVICE_FORMAT), SERVICE_FORMAT)
    ctx.stdout.write(render(fmt, [ServiceContext(s) for s in services], SERVICE_HEADERS))
    return 0


def match_services(api: SwarmAPI, refs: list[str]) -> tuple[list[Wire], list[Wire],
                                                             list[str]]:
    """By full ID, then full name, then unique ID prefix (docker's createFilter): the
    matches, every service seen (for names) and the "no such service" lines."""
    by_id = api.services({"id": {r: True for r in refs}})
    by_name = api.services({"name": {r: True for r in refs}})
    found: list[Wire] = []
    missing: list[str] = []
    for ref in refs:
        exact = [s for s in by_id if s.get("ID") == ref] or \
            [s for s in by_name if (s.get("Spec") or {}).get("Name") == ref]
        prefixed = exact[:1] or [s for s in by_id if str(s.get("ID", "")).startswith(ref)]
        if len(prefixed) > 1:
            raise StatusError(f"multiple services found with provided prefix: {ref}")
        if prefixed:
            found.append(prefixed[0])
        else:
            missing.append(f"no such service: {ref}")
    if not found:
        raise StatusError("\n".join(missing))
    return found, [*by_id, *by_name], missing


def ps_flags(p: FlagParser) -> None:
    filter_flag(p)
    p.add_argument("--format", default=None, help="Pretty-print tasks using a Go template")
    p.add_argument("--no-resolve", action="store_true", help="Do not map IDs to Names")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display task IDs")


def task_rows(tasks: Sequence[Wire], service_names: Mapping[str, str],
              node_names: Mapping[str, str], trunc: bool, table: bool,
              now: float | None = None) -> list[TaskContext]:
    """task.Print: ``<service>.<slot>`` (or ``.<node id>``) names, newest first per slot;
    in a table the older tasks of a slot are shown as `` \\_ web.1``."""
    named = []
    for task in tasks:
        sid = str(task.get("ServiceID", ""))
        slot = task.get("Slot") or 0
        name = f"{service_names.get(sid, sid)}.{slot or task.get('NodeID', '')}"
        try:
            created = parse_rfc3339(str(task.get("CreatedAt") or ""))
        except ValueError:
            created = 0.0
        named.append((name, created, task))
    named.sort(key=lambda item: -item[1])
    named.sort(key=lambda item: natural_key(item[0]))
    rows, previous = [], None
    for name, _, task in named:
        shown = f" \\_ {name}" if table and name == previous else name
        previous = name
        node_id = str(task.get("NodeID", ""))
        rows.append(TaskContext(task, shown, node_names.get(node_id, node_id), trunc, now))
    return rows


def node_names(api: SwarmAPI, tasks: Sequence[Wire]) -> dict[str, str]:
    if not any(t.get("NodeID") for t in tasks):
        return {}
    names = {}
    for node in api.nodes():
        spec, desc = node.get("Spec") or {}, node.get("Description") or {}
        names[str(node.get("ID"))] = str(spec.get("Name") or desc.get("Hostname") or
                                         node.get("ID"))
    return names


def _ps(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    filters = filters_of(ns.filter)
    matched, services, missing = match_services(api, ns.args)
    filters.setdefault("service", {}).update({str(s.get("ID")): True for s in matched})
    if "node" in filters:
        filters["node"] = {node_reference(api, n): True for n in filters["node"]}
    tasks = api.tasks(filters)
    fmt = resolve(choose(ns.format, ns.quiet, TASK_FORMAT), TASK_FORMAT)
    names = {} if ns.no_resolve else {str(s.get("ID")): str((s.get("Spec") or {}).get(
        "Name", "")) for s in services}
    nodes = {} if ns.no_resolve else node_names(api, tasks)
    rows = task_rows(tasks, names, nodes, not (ns.no_trunc or ns.quiet), fmt.table, time.time())
    ctx.stdout.write(render(fmt, rows, TASK_HEADERS))
    if missing:
        raise StatusError("\n".join(missing))
    return 0


def _inspect_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help=FORMAT_HELP)
    p.add_argument("--pretty", action="store_true",
                   help="Print the information in a human friendly format")


def _lookup(api: SwarmAPI, ref: str, raw: bool) -> Any:
    """Service inspect shows defaults in empty fields; a 404 is docker's own text."""
    try:
        return api.service_raw(ref, True) if raw else api.service(ref, True)
    except APIError as exc:
        if exc.status == 404:
            raise LookupError(f"Error: no such service: {ref}") from None
        raise


def _network_names(api: SwarmAPI, service: Wire) -> list[str]:
    spec = service.get("Spec") or {}
    targets = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
    names = []
    for net in targets:
        try:
            names.append(str(api.network(str(net.get("Target", ""))).get("Name") or ""))
        except APIError:
            names.append(str(net.get("Target", "")))
    return names


def _inspect(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.pretty and ns.format:
        raise StatusError("--format is incompatible with human friendly format")
    fmt = "pretty" if ns.pretty else (ns.format or "raw")
    if fmt.startswith("pretty") and fmt != "pretty":
        raise StatusError("Cannot supply extra formatting options to the pretty template")
    api = swarm_api(ctx)
    if fmt != "pretty":
        return inspect_all(ctx, ns.args, ("service",), fmt.removeprefix("raw") or None,
                           fetch=lambda ref: str(_lookup(api, ref, raw=True)))
    for ref in ns.args:
        try:
            service = _lookup(api, ref, raw=False)
        except LookupError as exc:
            raise StatusError(str(exc)) from None
        except APIError as exc:
            raise StatusError(f"Error response from daemon: {exc.message}") from None
        ctx.stdout.write(service_pretty(service, _network_names(api, service)))
    ctx.stdout.flush()
    return 0


LS = Command("ls", "[OPTIONS]", "List services", _ls_build, _ls, aliases=("list",))
PS = Command("ps", "[OPTIONS] SERVICE [SERVICE...]", "List the tasks of one or more services",
             ps_flags, _ps, (1, None))
INSPECT = Command("inspect", "[OPTIONS] SERVICE [SERVICE...]",
                  "Display detailed information on one or more services", _inspect_build,
                  _inspect, (1, None))
