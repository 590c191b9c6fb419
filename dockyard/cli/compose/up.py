"""``compose config/up/create/build/pull``: render the model, plan and converge."""
from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.compose.common import (
    cname,
    config_files,
    follow_logs,
    load,
    no_flags,
    parallel,
    progress_printer,
    project_containers,
    selected,
    stop_containers,
    with_deps,
)
from dockyard.cli.context import Context
from dockyard.compose import labels as L
from dockyard.compose import render
from dockyard.client.errors import APIError
from dockyard.compose.converge import ComposeError, Converger, list_containers
from dockyard.compose.model import Project
from dockyard.compose.plan import ServicePlan, orphans, plan_project
from dockyard.errors import DockyardError


def _config_flags(p: FlagParser) -> None:
    p.add_argument("--services", action="store_true", help="Print the service names, one per line")
    p.add_argument("--volumes", action="store_true", help="Print the volume names, one per line")
    p.add_argument("-q", "--quiet", action="store_true", help="Only validate the configuration")
    p.add_argument("--hash", default=None, help="Print the service config hash, one per line")


def _config(ctx: Context, ns: argparse.Namespace) -> int:
    project = load(ctx, ns)
    if ns.quiet:
        return 0
    if ns.services:
        ctx.out("\n".join(project.services), end="\n" if project.services else "")
    elif ns.volumes:
        ctx.out("\n".join(project.volumes), end="\n" if project.volumes else "")
    elif ns.hash:
        from dockyard.compose import config_hash
        names = list(project.services) if ns.hash == "*" else ns.hash.split(",")
        for n in names:
            ctx.out(f"{n} {config_hash(project.services[n])}")
    else:
        ctx.out(render(project), end="")
    return 0


def _scale_arg(text: str) -> tuple[str, int]:
    svc, eq, n = text.partition("=")
    if not eq or not n.isdigit():
        raise argparse.ArgumentTypeError(f"\x00{text}\x00expected SERVICE=NUM")
    return svc, int(n)



_scale_arg.__name__ = "scale"


PULL_POLICIES = ("policy", "always", "missing", "never", "build")


def _up_flags(p: FlagParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: Run containers "
                   "in the background")
    p.add_argument("--scale", action="append", type=_scale_arg, default=[],
                   help="Scale SERVICE to NUM instances (SERVICE=NUM)")
    p.add_argument("--build", action="store_true", help="Build images before starting "
                   "containers")
    p.add_argument("--no-build", action="store_true", help="Don't build an image, even if "
                   "it's policy")
    p.add_argument("--pull", default="policy", help="Pull image before running "
                   "(\"always\"|\"missing\"|\"never\"|\"build\")")
    p.add_argument("--force-recreate", action="store_true", help="Recreate containers even "
                   "if their configuration hasn't changed")
    p.add_argument("--no-recreate", action="store_true", help="Don't recreate existing "
                   "containers")
    p.add_argument("--no-start", action="store_true", help="Don't start the services after "
                   "creating them")
    p.add_argument("--no-deps", action="store_true", help="Don't start linked services")
    p.add_argument("--remove-orphans", action="store_true", help="Remove containers for "
                   "services not defined in the Compose file")


def _up_only_flags(p: FlagParser) -> None:
    _up_flags(p)
    p.add_argument("--wait", action="store_true", help="Wait for services to be "
                   "running|healthy. Implies detached mode.")
    p.add_argument("--wait-timeout", type=int, default=0, help="Maximum duration in seconds "
                   "to wait for the project to be running|healthy")


def converge_up(ctx: Context, ns: argparse.Namespace, project: Project, *, start: bool = True,
                build: bool = False) -> list[str]:
    services = selected(project, ns.args)
    if ns.args and not getattr(ns, "no_deps", False):
        services = with_deps(project, services)
    scale = dict(getattr(ns, "scale", []) or [])
    for s in scale:
        if s not in project.services:
            raise StatusError(f"no such service: {s}")
    build = build or getattr(ns, "build", False)
    no_build = getattr(ns, "no_build", False)
    if build and no_build:
        raise StatusError("--build and --no-build are incompatible")
    pull = getattr(ns, "pull", "policy") or "policy"
    if pull not in PULL_POLICIES:
        raise StatusError(f"invalid --pull option \"{pull}\"")
    client = ctx.client
    existing = list_containers(client, project.name)

    def plan(image_ids: Mapping[str, str] | None = None) -> dict[str, ServicePlan]:
        try:
            return plan_project(project, existing, scale, services,
                                force_recreate=getattr(ns, "force_recreate", False),
                                no_recreate=getattr(ns, "no_recreate", False),
                                image_ids=image_ids)
        except DockyardError as exc:
            raise StatusError(str(exc)) from None
    plan()  # its refusals come before anything is pulled, built or created
    with progress_printer(ctx, getattr(ns, "progress", None)) as progress:
        conv = Converger(client, project, progress, config_files(ctx, ns, project),
                         warn=lambda m: progress.log(f"WARN[0000] {m}"))
        for name in services:
            deploy = project.services[name].deploy
            if deploy and (deploy.placement_constraints or deploy.placement_preferences):
                progress.log(f"WARN[0000] service \"{name}\": deploy.placement applies to "
                             "swarm stacks (stack deploy); ignored here, on a single engine")
        stray = orphans(project, existing)
        if stray and getattr(ns, "remove_orphans", False):
            def rm(c: Mapping[str, Any]) -> None:
                progress("Container", cname(c), "Removing")
                client.delete(f"/containers/{c['Id']}", {"force": True})
                progress("Container", cname(c), "Removed")
            parallel(rm, stray)
        elif stray:
            progress.log(f"WARN[0000] Found orphan containers ({', '.join(cname(c) for c in stray)}"
                         f") for this project. If you removed or renamed this service in your "
                         f"compose file, you can run this command with the --remove-orphans "
                         f"flag to clean it up.")
        try:
            conv.ensure_images(services, build=build, pull_missing=True, no_build=no_build,
                               pull=None if pull == "policy" else pull)
            # recreate what changed, its config or its image (the tag now names another id)
            ids = {s: i for s in services if (i := conv.image_id(project.services[s]))}
            plans = plan(ids)
            conv.ensure_networks(services)
            conv.ensure_volumes(services)
            conv.apply(plans, start=start)
            if start and getattr(ns, "wait", False):
                conv.wait_services(services, getattr(ns, "wait_timeout", 0) or None)
        except ComposeError as exc:
            raise StatusError(str(exc)) from None
    return services


def _up(ctx: Context, ns: argparse.Namespace) -> int:
    project = load(ctx, ns)
    services = converge_up(ctx, ns, project, start=not ns.no_start)
    if ns.detach or ns.no_start or ns.wait:
        return 0
    attached = [s for s in services  # ``attach: false``: not in the followed logs
                if project.services[s].passthrough.get("attach", True) is not False]
    try:
        follow_logs(ctx, project.name, [c for c in project_containers(ctx, project.name)
                                        if (c.get("Labels") or {}).get(L.SERVICE) in attached],
                     follow=True, tail="all", timestamps=False, prefix=True)
    except KeyboardInterrupt:
        ctx.err("Gracefully stopping... (press Ctrl+C again to force)")
        stop_containers(ctx, project_containers(ctx, project.name, services, all=False), None,
                         project)
        return 130
    return 0


def _create(ctx: Context, ns: argparse.Namespace) -> int:
    ns.scale = ns.scale or []
    converge_up(ctx, ns, load(ctx, ns), start=False)
    return 0


def _build_cmd(ctx: Context, ns: argparse.Namespace) -> int:
    project = load(ctx, ns)
    with progress_printer(ctx, getattr(ns, "progress", None), "Building") as progress:
        conv = Converger(ctx.client, project, progress)
        try:
            for s in selected(project, ns.args):
                if project.services[s].build is not None:
                    conv.build(project.services[s])
        except ComposeError as exc:
            raise StatusError(str(exc)) from None
    return 0


def _pull_flags(p: FlagParser) -> None:
    p.add_argument("--ignore-buildable", action="store_true", help="Ignore images that can "
                   "be built")
    p.add_argument("--ignore-pull-failures", action="store_true", help="Pull what it can "
                   "and ignores images with pull failures")
    p.add_argument("--include-deps", action="store_true", help="Also pull services declared "
                   "as dependencies")
    p.add_argument("--policy", default=None, help="Apply pull policy (\"missing\"|"
                   "\"always\")")
    p.add_argument("-q", "--quiet", action="store_true", help="Pull without printing "
                   "progress information")


def _pull(ctx: Context, ns: argparse.Namespace) -> int:
    """Compose v2's rules: nothing to pull without an ``image``; ``pull_policy`` ``never`` or
    ``build`` skip; ``missing`` (or ``--policy missing``) skips what is present; with
    ``--ignore-buildable`` what has a build section is skipped; a failed pull of a buildable
    service is a warning (it can be built), of any other one an error unless
    ``--ignore-pull-failures``."""
    if ns.policy not in (None, "missing", "always"):
        raise StatusError(f"invalid pull policy {ns.policy!r}: must be \"missing\" or "
                          "\"always\"")
    project = load(ctx, ns)
    names = selected(project, ns.args)
    if ns.include_deps:
        names = with_deps(project, names)
    must_build: list[str] = []
    with progress_printer(ctx, "quiet" if ns.quiet else getattr(ns, "progress", None),
                          "Pulling") as progress:
        conv = Converger(ctx.client, project, progress)
        done: set[str] = set()
        for svc in (project.services[n] for n in names):
            policy = ns.policy or svc.pull_policy
            if not svc.image:
                progress("Service", svc.name, "Skipped - No image to be pulled")
            elif policy in ("never", "build"):
                progress("Image", svc.image, "Skipped")
            elif policy in ("missing", "if_not_present") and conv.image_id(svc):
                progress("Image", svc.image, "Skipped - Image is already present locally")
            elif svc.build is not None and ns.ignore_buildable:
                progress("Image", svc.image, "Skipped - Image can be built")
            elif svc.image not in done:
                done.add(svc.image)
                try:
                    conv.pull(svc)
                except (ComposeError, APIError) as exc:
                    progress("Image", svc.image, "Error")
                    if svc.build is not None:
                        must_build.append(svc.name)
                    elif not ns.ignore_pull_failures:
                        raise StatusError(_pull_error(exc)) from None
                    else:
                        progress.log(f"WARN[0000] {_pull_error(exc)}")
        if must_build:
            progress.log("WARNING: Some service image(s) must be built from source by "
                         f"running:\n    docker compose build {' '.join(must_build)}")
    return 0


def _pull_error(exc: Exception) -> str:
    return f"Error response from daemon: {exc.message}" if isinstance(exc, APIError) \
        else str(exc)


COMMANDS: tuple[Command, ...] = (
    Command("build", "[OPTIONS] [SERVICE...]", "Build or rebuild services", no_flags,
            _build_cmd, (0, None)),
    Command("config", "[OPTIONS] [SERVICE...]", "Parse, resolve and render compose file in "
            "canonical format", _config_flags, _config, (0, None)),
    Command("create", "[OPTIONS] [SERVICE...]", "Creates containers for a service",
            lambda p: (_up_flags(p)), _create, (0, None)),
    Command("pull", "[OPTIONS] [SERVICE...]", "Pull service images", _pull_flags, _pull,
            (0, None)),
    Command("up", "[OPTIONS] [SERVICE...]", "Create and start containers", _up_only_flags, _up,
            (0, None)),
)
