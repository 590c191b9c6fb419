"""``stack deploy|ls|services|ps|rm``: compose files on a swarm, done client-side as the docker
CLI does (networks and services carrying the ``com.docker.stack.namespace`` label)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

from dockyard.cli import servicelist
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve
from dockyard.cli.listopts import filters_of
from dockyard.cli.nodes import filter_flag
from dockyard.cli.services import resolve_image, wait
from dockyard.cli.stackspec import NAMESPACE, StackError, convert, scope, unsupported_keys
from dockyard.cli.swarm import swarm_api
from dockyard.cli.swarmfmt import (SERVICE_FORMAT, SERVICE_HEADERS, TASK_FORMAT, TASK_HEADERS,
                                   ServiceContext, choose, natural_key)
from dockyard.client.errors import APIError
from dockyard.client.swarm import SwarmAPI
from dockyard.compose.loader import ProjectOptions, load_project
from dockyard.errors import DockyardError

Wire = dict[str, Any]
NOT_MANAGER = ('this node is not a swarm manager. Use "docker swarm init" or "docker swarm '
               'join" to connect this node to swarm and try again')


def _label(namespace: str) -> dict[str, dict[str, bool]]:
    return {"label": {f"{NAMESPACE}={namespace}": True}}


def _services(api: SwarmAPI, namespace: str, extra: dict[str, Any] | None = None) -> list[Wire]:
    return api.services({**(extra or {}), **_label(namespace)})


def _networks(ctx: Context, namespace: str) -> list[Wire]:
    return ctx.client.get("/networks", {"filters": _label(namespace)}) or []


# -- deploy -----------------------------------------------------------------------------------
def _deploy_build(p: FlagParser) -> None:
    p.add_argument("-c", "--compose-file", action="append", default=[], metavar="strings",
                   help='Path to a Compose file, or "-" to read from stdin')
    p.add_argument("-d", "--detach", action="store_true", default=None,
                   help="Exit immediately instead of waiting for the stack services to "
                   "converge (default true)")
    p.add_argument("--prune", action="store_true",
                   help="Prune services that are no longer referenced")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")
    p.add_argument("--resolve-image", default="always",
                   help='Query the registry to resolve image digest and supported platforms '
                   '("always", "changed", "never") (default "always")')
    p.add_argument("--with-registry-auth", action="store_true",
                   help="Send registry authentication details to Swarm agents")


def _load(ctx: Context, files: list[str], namespace: str) -> Any:
    if not files:
        raise StatusError("Specify a Compose file (with --compose-file)")
    paths, tmp = [], None
    for f in files:
        if f == "-":
            tmp = tempfile.NamedTemporaryFile("w", suffix=".yml", dir=os.getcwd(), delete=False)
            tmp.write(sys.stdin.read())
            tmp.close()
            f = tmp.name
        paths.append(f)
    try:
        return load_project(ProjectOptions(files=tuple(paths), project_name=namespace,
                                           os_env=dict(os.environ), cwd=os.getcwd()))
    except DockyardError as exc:
        raise StatusError(str(exc)) from None
    finally:
        if tmp is not None:
            os.unlink(tmp.name)


def _check_manager(ctx: Context) -> None:
    info = ctx.client.get("/info") or {}
    if not (info.get("Swarm") or {}).get("ControlAvailable"):
        raise StatusError(NOT_MANAGER)


def _deploy(ctx: Context, ns: argparse.Namespace) -> int:
    namespace = ns.args[0]
    if ns.resolve_image not in ("always", "changed", "never"):
        raise StatusError("Invalid option " + ns.resolve_image + " for flag --resolve-image")
    _check_manager(ctx)
    project = _load(ctx, ns.compose_file, namespace)
    ignored = unsupported_keys(project)
    if ignored:
        ctx.stderr.write(f"Ignoring unsupported options: {', '.join(ignored)}\n\n")
    try:
        plan = convert(project, namespace)
    except StackError as exc:
        raise StatusError(str(exc)) from None
    api = swarm_api(ctx)
    if ns.prune:
        keep = {scope(namespace, key) for key in plan.services}
        for svc in _services(api, namespace):
            name = str((svc.get("Spec") or {}).get("Name", ""))
            if name not in keep:
                ctx.stdout.write(f"Removing service {name}\n")
                api.remove_service(str(svc.get("ID")))
    _check_external(ctx, plan.external_networks)
    for kind, objects in (("secret", plan.secrets), ("config", plan.configs)):
        _create_file_objects(ctx, kind, objects)
    for spec in plan.services.values():
        _resolve_refs(ctx, spec)
    existing = {str(n.get("Name")) for n in _networks(ctx, namespace)}
    for name, body in plan.networks.items():
        if name not in existing:
            ctx.stdout.write(f"Creating network {name}\n")
            try:
                ctx.client.post("/networks/create", json_body=body)
            except APIError as exc:
                raise StatusError(f"failed to create network {name}: {exc.message}") from None
    ids = _deploy_services(ctx, api, namespace, plan.services, ns.resolve_image)
    if ns.detach is not False:
        return 0
    for service_id in ids:
        wait(ctx, api, service_id, ns.quiet)
    return 0


def _create_file_objects(ctx: Context, kind: str, objects: dict[str, Wire]) -> None:
    """Create each secret/config, or update one that exists (labels only: the daemon refuses
    a change of data), as docker's stack deploy does."""
    for name, spec in objects.items():
        try:
            current = ctx.client.get(f"/{kind}s/{name}") or {}
        except APIError as exc:
            if exc.status != 404:
                raise
            ctx.stdout.write(f"Creating {kind} {name}\n")
            try:
                ctx.client.post(f"/{kind}s/create", json_body=spec)
            except APIError as err:
                raise StatusError(f"failed to create {kind} {name}: Error response from "
                                  f"daemon: {err.message}") from None
            continue
        version = int((current.get("Version") or {}).get("Index") or 0)
        try:
            ctx.client.post(f"/{kind}s/{current.get('ID')}/update",
                            {"version": str(version)}, json_body=spec)
        except APIError as err:
            raise StatusError(f"failed to update {kind} {name}: Error response from "
                              f"daemon: {err.message}") from None


def _resolve_refs(ctx: Context, spec: Wire) -> None:
    """Fill in each secret/config reference's id from its name."""
    container = spec["TaskTemplate"]["ContainerSpec"]
    for kind, key in (("secret", "Secrets"), ("config", "Configs")):
        refs = container.get(key) or []
        if not refs:
            continue
        field = f"{kind.capitalize()}Name"
        names = sorted({str(r[field]) for r in refs})
        found = ctx.client.get(f"/{kind}s", {"filters": {"name": {n: True for n in names}}})
        ids = {str((o.get("Spec") or {}).get("Name")): str(o.get("ID")) for o in found or []}
        for ref in refs:
            if ref[field] not in ids:
                raise StatusError(f"{kind} not found: {ref[field]}")
            ref[f"{kind.capitalize()}ID"] = ids[ref[field]]


def _check_external(ctx: Context, names: list[str]) -> None:
    for name in names:
        if name in ("host", "bridge", "none", "ingress"):
            continue
        try:
            net = ctx.client.get(f"/networks/{name}") or {}
        except APIError as exc:
            if exc.status == 404:
                raise StatusError(f'network "{name}" is declared as external, but could not '
                                  "be found. You need to create a swarm-scoped network before "
                                  "the stack is deployed") from None
            raise
        if net.get("Scope") != "swarm":
            raise StatusError(f'network "{name}" is declared as external, but it is not in the '
                              f'right scope: "{net.get("Scope")}" instead of "swarm"')


def _deploy_services(ctx: Context, api: SwarmAPI, namespace: str, specs: dict[str, Any],
                     resolve_mode: str) -> list[str]:
    current = {str((s.get("Spec") or {}).get("Name")): s for s in _services(api, namespace)}
    ids = []
    for key in sorted(specs):
        spec, name = specs[key], scope(namespace, key)
        image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        found = current.get(name)
        if found is None:
            ctx.stdout.write(f"Creating service {name}\n")
            if resolve_mode != "never":
                resolve_image(api, spec["TaskTemplate"], True)
            try:
                ids.append(str(api.create_service(spec).get("ID")))
            except APIError as exc:
                raise StatusError(f"failed to create service {name}: {exc.message}") from None
            continue
        ctx.stdout.write(f"Updating service {name} (id: {found.get('ID')})\n")
        old = found.get("Spec") or {}
        changed = image != (old.get("Labels") or {}).get("com.docker.stack.image")
        if resolve_mode == "always" or (resolve_mode == "changed" and changed):
            warning = resolve_image(api, spec["TaskTemplate"], True)
            if warning:
                ctx.stderr.write(warning)
        elif not changed:  # keep the digest pinned by the previous deploy
            spec["TaskTemplate"]["ContainerSpec"]["Image"] = \
                ((old.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", image)
        spec["TaskTemplate"]["ForceUpdate"] = (old.get("TaskTemplate") or {}).get("ForceUpdate", 0)
        version = int(((found.get("Version") or {}).get("Index")) or 0)
        try:
            api.update_service(str(found.get("ID")), version, spec)
        except APIError as exc:
            raise StatusError(f"failed to update service {name}: {exc.message}") from None
        ids.append(str(found.get("ID")))
    return ids


# -- ls / services / ps / rm -----------------------------------------------------------------
class StackContext:
    def __init__(self, name: str, services: int) -> None:
        self.Name, self.Services = name, str(services)

    def to_json(self) -> dict[str, str]:
        return {"Name": self.Name, "Services": self.Services}


def _ls_build(p: FlagParser) -> None:
    p.add_argument("--format", default=None, help="Format output using a custom template")


def _ls(ctx: Context, ns: argparse.Namespace) -> int:
    counts: dict[str, int] = {}
    for svc in swarm_api(ctx).services():
        label = ((svc.get("Spec") or {}).get("Labels") or {}).get(NAMESPACE)
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    rows = [StackContext(name, counts[name]) for name in sorted(counts, key=natural_key)]
    fmt = resolve(ns.format, "table {{.Name}}\t{{.Services}}")
    ctx.stdout.write(render(fmt, rows, {"Name": "NAME", "Services": "SERVICES"}))
    return 0


def _services_build(p: FlagParser) -> None:
    filter_flag(p)
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")


def _list_services(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    services = _services(api, ns.args[0], filters_of(ns.filter))
    if not services:
        ctx.stderr.write(f"Nothing found in stack: {ns.args[0]}\n")
        return 0
    if not ns.quiet:
        services = api.services({**filters_of(ns.filter), **_label(ns.args[0])}, status=True)
    services.sort(key=lambda s: natural_key(str((s.get("Spec") or {}).get("Name", ""))))
    fmt = resolve(choose(ns.format, ns.quiet, SERVICE_FORMAT), SERVICE_FORMAT)
    ctx.stdout.write(render(fmt, [ServiceContext(s) for s in services], SERVICE_HEADERS))
    return 0


def _ps(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    filters = {**filters_of(ns.filter), **_label(ns.args[0])}
    tasks = api.tasks(filters)
    if not tasks:
        raise StatusError(f"nothing found in stack: {ns.args[0]}")
    fmt = resolve(choose(ns.format, ns.quiet, TASK_FORMAT), TASK_FORMAT)
    names = {} if ns.no_resolve else {str(s.get("ID")): str((s.get("Spec") or {}).get(
        "Name", "")) for s in _services(api, ns.args[0])}
    nodes = {} if ns.no_resolve else servicelist.node_names(api, tasks)
    rows = servicelist.task_rows(tasks, names, nodes, not (ns.no_trunc or ns.quiet), fmt.table,
                                 time.time())
    ctx.stdout.write(render(fmt, rows, TASK_HEADERS))
    return 0


def _rm_build(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", default=None,
                   help="Do not wait for stack removal (default true)")


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    api, failed = swarm_api(ctx), []
    for namespace in ns.args:
        services = sorted(_services(api, namespace),
                          key=lambda s: str((s.get("Spec") or {}).get("Name", "")))
        networks = _networks(ctx, namespace)
        files = {kind: ctx.client.get(f"/{kind}s", {"filters": _label(namespace)}) or []
                 for kind in ("secret", "config")}
        if not services and not networks and not any(files.values()):
            ctx.stderr.write(f"Nothing found in stack: {namespace}\n")
            continue
        bad = False
        for svc in services:
            ctx.stdout.write(f"Removing service {(svc.get('Spec') or {}).get('Name')}\n")
            bad = _try(ctx, "service", str(svc.get("ID")), lambda: api.remove_service(
                str(svc.get("ID")))) or bad
        for kind, objects in files.items():
            for obj in objects:
                ctx.stdout.write(f"Removing {kind} {(obj.get('Spec') or {}).get('Name')}\n")
                bad = _try(ctx, kind, str(obj.get("ID")), lambda: ctx.client.delete(
                    f"/{kind}s/{obj.get('ID')}")) or bad
        for net in networks:
            ctx.stdout.write(f"Removing network {net.get('Name')}\n")
            bad = _try(ctx, "network", str(net.get("Id")), lambda: ctx.client.delete(
                f"/networks/{net.get('Id')}")) or bad
        if bad:
            failed.append(f"failed to remove some resources from stack: {namespace}")
        elif ns.detach is False:
            _wait_gone(ctx, namespace)
    if failed:
        raise StatusError("\n".join(failed))
    return 0


def _try(ctx: Context, kind: str, ident: str, call: Any) -> bool:
    try:
        call()
    except APIError as exc:
        ctx.stderr.write(f"Failed to remove {kind} {ident}: {exc}")
        return True
    return False


def _wait_gone(ctx: Context, namespace: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = swarm_api(ctx).tasks(_label(namespace))
        if all((t.get("Status") or {}).get("State") in ("complete", "shutdown", "failed",
                                                          "rejected", "orphaned", "remove")
               for t in tasks):
            return
        time.sleep(0.2)


DEPLOY = Command("deploy", "[OPTIONS] STACK", "Deploy a new stack or update an existing stack",
                 _deploy_build, _deploy, (1, 1), aliases=("up",))
LS = Command("ls", "[OPTIONS]", "List stacks", _ls_build, _ls, (0, 0), aliases=("list",))
SERVICES = Command("services", "[OPTIONS] STACK", "List the services in the stack",
                   _services_build, _list_services, (1, 1))
PS = Command("ps", "[OPTIONS] STACK", "List the tasks in the stack", servicelist.ps_flags,
             _ps, (1, 1))
RM = Command("rm", "[OPTIONS] STACK [STACK...]", "Remove one or more stacks", _rm_build, _rm,
             (1, None), aliases=("remove", "down"))
STACK = {"deploy": DEPLOY, "up": DEPLOY, "ls": LS, "list": LS, "services": SERVICES, "ps": PS,
         "rm": RM, "remove": RM, "down": RM}
