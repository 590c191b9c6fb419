"""Shared pieces of the ``dockyard compose`` subcommands: loading the project, selecting
services and their containers, progress lines, and running per-container work in parallel."""
from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockyard.cli.command import FlagParser, StatusError
from dockyard.cli.compose.progress import Printer, choose_mode
from dockyard.cli.context import Context
from dockyard.client.streams import frames
from dockyard.compose import ProjectOptions, load_project
from dockyard.compose import labels as L
from dockyard.compose.converge import list_containers, sort_containers
from dockyard.compose.model import Project
from dockyard.errors import DockyardError


# -- project loading ------------------------------------------------------------------------------
def options(ctx: Context, ns: argparse.Namespace) -> ProjectOptions:
    return ProjectOptions(files=tuple(ns.file or ()), project_dir=ns.project_directory,
                          project_name=ns.project_name, env_files=tuple(ns.env_file or ()),
                          profiles=tuple(ns.profile or ()), os_env=dict(ctx.env),
                          cwd=os.getcwd())


def load(ctx: Context, ns: argparse.Namespace) -> Project:
    try:
        project = load_project(options(ctx, ns))
    except DockyardError as exc:
        raise StatusError(str(exc)) from None
    for w in project.warnings:
        ctx.err(f"WARN[0000] {w}")
    return project


def load_name(ctx: Context, ns: argparse.Namespace) -> tuple[str, Project | None]:
    """``-p`` alone is enough for ps/logs/down/stop/start (as in Compose v2)."""
    try:
        project = load_project(options(ctx, ns))
    except DockyardError:
        if ns.project_name:
            return ns.project_name, None
        raise
    return project.name, project


def config_files(ctx: Context, ns: argparse.Namespace, project: Project) -> list[str]:
    if ns.file:
        return [os.path.abspath(f) for f in ns.file]
    from dockyard.compose.loader import DEFAULT_FILES
    for name in DEFAULT_FILES:
        p = os.path.join(project.working_dir, name)
        if os.path.isfile(p):
            return [p]
    return []


def progress_printer(ctx: Context, mode: str | None = None, title: str = "Running") -> Printer:
    """The progress callback; ``with progress_printer(...)`` shows the live block on a tty
    (see :mod:`dockyard.cli.compose.progress`); not entered, it prints plain lines."""
    return Printer(ctx.stderr, choose_mode(mode, ctx.stderr, dict(ctx.env)), title)


def selected(project: Project | None, names: Sequence[str]) -> list[str]:
    if project is None:
        return list(names)
    for n in names:
        if n not in project.services:
            raise StatusError(f"no such service: {n}")
    return list(names) or list(project.services)


def with_deps(project: Project, names: Iterable[str]) -> list[str]:
    out: set[str] = set()

    def add(n: str) -> None:
        if n in out or n not in project.services:
            return
        out.add(n)
        for d in project.services[n].depends_on:
            add(d)
    for n in names:
        add(n)
    return sorted(out)


def project_containers(ctx: Context, name: str, services: Sequence[str] = (),
                all: bool = True) -> list[Mapping[str, Any]]:
    cs = list_containers(ctx.client, name, all=all)
    if services:
        cs = [c for c in cs if (c.get("Labels") or {}).get(L.SERVICE) in services]
    return sort_containers(cs)


def label(c: Mapping[str, Any], key: str) -> str:
    return str((c.get("Labels") or {}).get(key, ""))


def cname(c: Mapping[str, Any]) -> str:
    return str((c.get("Names") or [c.get("Id", "")])[0]).lstrip("/")


def parallel(fn: Callable[[Mapping[str, Any]], None], items: Sequence[Mapping[str, Any]]) -> None:
    if not items:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        for f in [pool.submit(fn, c) for c in items]:
            f.result()


def levels(project: Project | None) -> list[list[str]]:
    from dockyard.compose import dependency_order
    return dependency_order(project) if project else []


def short_name(project: str, c: Mapping[str, Any]) -> str:
    """The log prefix, as Compose v2 makes it: ``<service>-<n>`` for a container under its
    default name, the whole name for one with a ``container_name`` (or any other name)."""
    name = cname(c)
    default = f"{project}-{label(c, L.SERVICE)}-{label(c, L.NUMBER)}"
    return name[len(project) + 1:] if name == default else name


def stop_containers(ctx: Context, cs: Sequence[Mapping[str, Any]], timeout: int | None,
                    project: Project | None = None,
                    progress: Callable[[str, str, str], None] | None = None) -> None:
    progress = progress or progress_printer(ctx)

    def stop(c: Mapping[str, Any]) -> None:
        progress("Container", cname(c), "Stopping")
        ctx.client.post(f"/containers/{c['Id']}/stop", {"t": timeout})
        progress("Container", cname(c), "Stopped")
    live = [c for c in cs if c.get("State") in ("running", "paused", "restarting")]
    # reverse dependency order: dependents first, one level at a time
    order = list(reversed(levels(project))) if project else []
    for level in order:
        parallel(stop, [c for c in live if (c.get("Labels") or {}).get(L.SERVICE) in level])
    placed = {s for level in order for s in level}
    parallel(stop, [c for c in live if (c.get("Labels") or {}).get(L.SERVICE) not in placed])


def timeout_flag(p: FlagParser) -> None:
    p.add_argument("-t", "--timeout", type=int, default=None,
                   help="Specify a shutdown timeout in seconds")


def no_flags(p: FlagParser) -> None:
    pass


def follow_logs(ctx: Context, project: str, cs: Sequence[Mapping[str, Any]], follow: bool,
                 tail: str, timestamps: bool, prefix: bool) -> None:
    width = max((len(short_name(project, c)) for c in cs), default=0)
    lock = threading.Lock()
    out = ctx.bin_stdout

    def pump(c: Mapping[str, Any]) -> None:
        info = ctx.client.get(f"/containers/{c['Id']}/json")
        tty = bool((info.get("Config") or {}).get("Tty"))
        head = (short_name(project, c).ljust(width) + "  | ").encode() if prefix else b""
        query = {"stdout": True, "stderr": True, "follow": follow or None,
                 "timestamps": timestamps or None, "tail": tail}
        pending: dict[int, bytes] = {}
        with ctx.client.stream("GET", f"/containers/{c['Id']}/logs", query) as resp:
            for stream, data in frames(resp, tty):
                buf = pending.get(stream, b"") + data
                *lines, rest = buf.split(b"\n")
                pending[stream] = rest
                if lines:
                    with lock:
                        out.write(b"".join(head + ln + b"\n" for ln in lines))
                        out.flush()
        with lock:
            for rest in pending.values():
                if rest:
                    out.write(head + rest + b"\n")
            out.flush()

    if not cs:
        return
    threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in cs]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
