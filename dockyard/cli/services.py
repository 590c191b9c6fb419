"""``service create|update|scale|rollback|rm|logs`` (listing lives in ``servicelist``)."""
from __future__ import annotations

import argparse
import io
import re
from typing import Any

from dockyard.cli import auth, servicelist, term
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.containers import for_each
from dockyard.cli.context import Context
from dockyard.cli.refs import registry_host
from dockyard.cli.runparse import OptionError
from dockyard.cli.serviceflags import add_create_flags, add_update_flags
from dockyard.cli.serviceprogress import Display, ProgressError, wait_on_service
from dockyard.cli.servicespec import Spec, SpecError, create_spec, with_digest, with_tag
from dockyard.cli.serviceupdate import apply_update, check_rollback
from dockyard.cli.swarm import swarm_api
from dockyard.client.errors import APIError
from dockyard.client.swarm import SwarmAPI


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def digest_warning(image: str) -> str:
    return (f"image {image} could not be accessed on a registry to record\nits digest. Each "
            f"node will access {image} independently,\npossibly leading to different nodes "
            "running different\nversions of the image.\n")


def resolve_image(api: SwarmAPI, task: Spec, query: bool, registry_auth: str = "") -> str:
    """The client's image handling: always tagged; with ``query`` pinned to the registry's
    digest and platforms (a warning when the registry cannot be asked)."""
    cspec = task.get("ContainerSpec")
    if not cspec or not cspec.get("Image"):
        return ""
    cspec["Image"] = image = with_tag(str(cspec["Image"]))
    if not query:
        return ""
    try:
        found = api.distribution(image, registry_auth)
    except APIError:
        return digest_warning(image)
    cspec["Image"] = with_digest(image, str((found.get("Descriptor") or {}).get("Digest", "")))
    platforms = []
    for p in found.get("Platforms") or []:
        platform = {"Architecture": "" if str(p.get("architecture", "")).lower() == "arm"
                    else p.get("architecture", ""), "OS": p.get("os", "")}
        platforms.append({k: v for k, v in platform.items() if v})
    if platforms:
        task.setdefault("Placement", {})["Platforms"] = platforms
    return ""


def _registry_auth(ctx: Context, ns: argparse.Namespace, image: str) -> str:
    if not ns.with_registry_auth or not image:
        return ""
    return auth.encode_header(auth.credentials(ctx.config_path, registry_host(image)))


def wait(ctx: Context, api: SwarmAPI, service_id: str, quiet: bool) -> None:
    """WaitOnService: progress on stdout (nothing with ``-q``)."""
    terminal = not quiet and ctx.stdout_is_tty()
    width = 200
    if terminal:
        try:
            width = (term.size(ctx.stdout.fileno()) or (0, 200))[1]
        except (OSError, ValueError, AttributeError):
            pass
    out = io.StringIO() if quiet else ctx.stdout
    try:
        wait_on_service(api, service_id, Display(out, terminal, width))
    except ProgressError as exc:
        raise StatusError(str(exc)) from None


def _warn(ctx: Context, answer: dict[str, Any], warning: str) -> None:
    for text in list(answer.get("Warnings") or []) + ([warning] if warning else []):
        ctx.err(str(text))


def _create(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        spec = create_spec(ns, ns.args[0], ns.args[1:], ctx.env, _read_file)
    except SpecError as exc:
        raise StatusError(str(exc)) from None
    except OptionError as exc:
        raise StatusError(str(exc), 125) from None
    api = swarm_api(ctx)
    task = spec["TaskTemplate"]
    if task.get("Networks"):
        for net in task["Networks"]:
            net["Target"] = str(api.network(net["Target"]).get("ID") or net["Target"])
        task["Networks"].sort(key=lambda n: n["Target"])
    registry_auth = _registry_auth(ctx, ns, ns.args[0])
    warning = resolve_image(api, task, not ns.no_resolve_image, registry_auth)
    answer = api.create_service(spec, registry_auth)
    _warn(ctx, answer, warning)
    service_id = str(answer.get("ID", ""))
    ctx.out(service_id)
    if not ns.detach:
        wait(ctx, api, service_id, bool(ns.quiet))
    return 0


def _version(service: dict[str, Any]) -> int:
    return int((service.get("Version") or {}).get("Index", 0))


def _update(ctx: Context, ns: argparse.Namespace) -> int:
    ref = ns.args[0]
    api = swarm_api(ctx)
    try:
        check_rollback(ns)
        service = api.service(ref)
        spec = apply_update(service.get("Spec") or {}, ns, ctx.env)
    except SpecError as exc:
        raise StatusError(str(exc)) from None
    except OptionError as exc:
        raise StatusError(str(exc), 125) from None
    image = str(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
    registry_auth = _registry_auth(ctx, ns, image)
    query = ns.image is not None and not ns.no_resolve_image
    warning = resolve_image(api, spec.setdefault("TaskTemplate", {}), query, registry_auth)
    answer = api.update_service(str(service.get("ID", ref)), _version(service), spec,
                                "" if registry_auth else
                                ("previous-spec" if ns.rollback else "spec"),
                                "previous" if ns.rollback else "", registry_auth)
    _warn(ctx, answer, warning)
    ctx.out(ref)
    if not ns.detach:
        wait(ctx, api, ref, bool(ns.quiet))
    return 0


def _rollback_build(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="Exit immediately instead of waiting for the service to converge")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")


def _rollback(ctx: Context, ns: argparse.Namespace) -> int:
    ref = ns.args[0]
    api = swarm_api(ctx)
    service = api.service(ref)
    answer = api.update_service(str(service.get("ID", ref)), _version(service),
                                service.get("Spec") or {}, rollback="previous")
    _warn(ctx, answer, "")
    ctx.out(ref)
    if not ns.detach:
        wait(ctx, api, ref, ns.quiet)
    return 0


def _scale_build(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true",
                   help="Exit immediately instead of waiting for the service to converge")


def _scale_one(ctx: Context, api: SwarmAPI, ref: str, replicas: int) -> None:
    service = api.service(ref)
    spec = dict(service.get("Spec") or {})
    mode = spec.get("Mode") or {}
    if mode.get("Replicated") is not None:
        mode["Replicated"]["Replicas"] = replicas
    elif mode.get("ReplicatedJob") is not None:
        mode["ReplicatedJob"]["TotalCompletions"] = replicas
    else:
        raise StatusError("scale can only be used with replicated or replicated-job mode")
    answer = api.update_service(str(service.get("ID", ref)), _version(service), spec)
    _warn(ctx, answer, "")
    ctx.out(f"{ref} scaled to {replicas}")


def _scale(ctx: Context, ns: argparse.Namespace) -> int:
    for arg in ns.args:
        key, sep, value = arg.partition("=")
        if not (sep and key and value):
            raise StatusError(
                f"invalid scale specifier '{arg}'.\nSee 'dockyard service scale --help'.\n\n"
                f"Usage:  dockyard service scale {SCALE.usage}\n\n{SCALE.summary}")
    api = swarm_api(ctx)
    errors, scaled = [], []
    for arg in ns.args:
        ref, _, value = arg.partition("=")
        if not re.match(r"^\d+$", value):
            errors.append(f"{ref}: invalid replicas value {value}: strconv.ParseUint: parsing "
                          f'"{value}": invalid syntax')
            continue
        try:
            _scale_one(ctx, api, ref, int(value))
            scaled.append(ref)
        except APIError as exc:
            errors.append(f"{ref}: Error response from daemon: {exc.message}")
        except StatusError as exc:
            errors.append(f"{ref}: {exc.message}")
    if not ns.detach:
        for ref in scaled:
            try:
                wait(ctx, api, ref, False)
            except StatusError as exc:
                errors.append(f"{ref}: {exc.message}")
            except APIError as exc:
                errors.append(f"{ref}: Error response from daemon: {exc.message}")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def _none(_: FlagParser) -> None:
    return None


def _rm(ctx: Context, ns: argparse.Namespace) -> int:
    api = swarm_api(ctx)
    return for_each(ctx, ns.args, api.remove_service)


def _logs_build(p: FlagParser) -> None:
    for flag, text in (("--details", "Show extra details provided to logs"),
                       ("--no-resolve", "Do not map IDs to Names in output"),
                       ("--no-task-ids", "Do not include task IDs in output"),
                       ("--no-trunc", "Do not truncate output"),
                       ("--raw", "Do not neatly format logs")):
        p.add_argument(flag, action="store_true", help=text)
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("--since", default="", help='Show logs since timestamp (e.g. '
                   '"2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')
    p.add_argument("-n", "--tail", default="all",
                   help='Number of lines to show from the end of the logs (default "all")')
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")


def _logs(ctx: Context, ns: argparse.Namespace) -> int:
    raise StatusError("dockyard service logs is not supported yet")


CREATE = Command("create", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new service",
                 add_create_flags, _create, (1, None), interspersed=False)
UPDATE = Command("update", "[OPTIONS] SERVICE", "Update a service", add_update_flags, _update,
                 (1, 1))
ROLLBACK = Command("rollback", "[OPTIONS] SERVICE", "Revert changes to a service's "
                   "configuration", _rollback_build, _rollback, (1, 1))
SCALE = Command("scale", "SERVICE=REPLICAS [SERVICE=REPLICAS...]",
                "Scale one or multiple replicated services", _scale_build, _scale, (1, None))
RM = Command("rm", "SERVICE [SERVICE...]", "Remove one or more services", _none, _rm,
             (1, None), aliases=("remove",))
LOGS = Command("logs", "[OPTIONS] SERVICE|TASK", "Fetch the logs of a service or task",
               _logs_build, _logs, (1, 1))
SERVICE = {"create": CREATE, "inspect": servicelist.INSPECT, "logs": LOGS,
           "ls": servicelist.LS, "list": servicelist.LS, "ps": servicelist.PS, "rm": RM,
           "remove": RM, "rollback": ROLLBACK, "scale": SCALE, "update": UPDATE}
