"""``inspect`` (any object), ``container inspect`` and ``image inspect``."""
from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.format import TemplateError
from dockyard.cli.gotemplate import Template
from dockyard.client.errors import APIError

ENDPOINTS: dict[str, str] = {
    "container": "/containers/{}/json", "image": "/images/{}/json",
    "network": "/networks/{}", "volume": "/volumes/{}", "plugin": "/plugins/{}/json",
    "node": "/nodes/{}", "service": "/services/{}", "task": "/tasks/{}",
    "secret": "/secrets/{}", "config": "/configs/{}",
}
ORDER = ("container", "image", "network", "volume", "node", "service", "task", "plugin",
         "secret", "config")


def indent_json(raw: str, indent: str = "    ") -> str:
    """Go's json.Indent: re-indent without touching string contents or key order."""
    out: list[str] = []
    depth = 0
    i = 0
    need_newline = False
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            j = i + 1
            while raw[j] != '"':
                j += 2 if raw[j] == "\\" else 1
            if need_newline:
                out.append("\n" + indent * depth)
                need_newline = False
            out.append(raw[i:j + 1])
            i = j + 1
            continue
        i += 1
        if ch in " \t\r\n":
            continue
        if need_newline and ch not in "]}":
            out.append("\n" + indent * depth)
        if ch in "[{":
            depth += 1
            need_newline = True
            out.append(ch)
            continue
        if ch in "]}":
            depth -= 1
            if not need_newline:
                out.append("\n" + indent * depth)
            need_newline = False
            out.append(ch)
            continue
        need_newline = False
        if ch == ",":
            out.append(",")
            need_newline = True
        elif ch == ":":
            out.append(": ")
        else:
            out.append(ch)
    return "".join(out)


def fetch_raw(ctx: Context, kind: str, name: str, size: bool = False) -> str:
    path = ENDPOINTS[kind].format(quote(name, safe=":@/"))
    query = {"size": True} if size and kind == "container" else None
    with ctx.client.request("GET", path, query) as resp:
        return resp.read().decode("utf-8")


def _not_found(exc: APIError) -> bool:
    """Try the next kind: not found, not supported, or (for swarm kinds) not a manager."""
    return exc.status in (404, 405, 501) or (
        exc.status == 503 and "This node is not a swarm manager" in exc.message)


def find(ctx: Context, name: str, kinds: tuple[str, ...], size: bool) -> str:
    """The raw JSON of the first kind that has ``name``; typed lookups keep the daemon's
    error, the generic one says ``No such object``."""
    for kind in kinds:
        try:
            return fetch_raw(ctx, kind, name, size)
        except APIError as exc:
            if len(kinds) == 1 or not _not_found(exc):
                raise
    raise LookupError(f"Error: No such object: {name}")


def inspect_all(ctx: Context, names: list[str], kinds: tuple[str, ...], fmt: str | None,
                size: bool = False, typed: Callable[[Any], Any] | None = None,
                fetch: Callable[[str], str] | None = None) -> int:
    """``typed``: for objects docker decodes and marshals again instead of printing the
    daemon's bytes (e.g. volumes), the Go struct's view of the decoded JSON. ``fetch``:
    the raw JSON of one name, instead of the lookup by kind (LookupError: not found)."""
    template = None
    if fmt and fmt != "json":
        try:
            template = Template(fmt)
        except TemplateError as exc:
            raise StatusError(f"template parsing error: {exc}") from None
    raws: list[str] = []
    errors: list[str] = []
    for name in names:
        try:
            raw = fetch(name) if fetch else find(ctx, name, kinds, size)
            raws.append(go_marshal(typed(json.loads(raw))) if typed else raw)
        except LookupError as exc:
            errors.append(str(exc))
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
    _print(ctx, raws, template, compact=fmt == "json")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


def go_marshal(value: Any) -> str:
    """Go's json.Marshal: compact, non-ASCII kept, ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def compact_json(raw: str) -> str:
    """Go's json.Compact: drop the whitespace between tokens, strings untouched."""
    return "".join(part if i % 2 else re.sub(r"\s+", "", part)
                   for i, part in enumerate(re.split(r'("(?:[^"\\]|\\.)*")', raw)))


def _print(ctx: Context, raws: list[str], template: Template | None,
           compact: bool = False) -> None:
    """docker's inspectors: indented JSON, compact JSON (``-f json``), or one template line
    per object (a lone newline when nothing was found)."""
    if template is None:
        joined = "[" + ",".join(r.strip() for r in raws) + "]"
        ctx.out(compact_json(joined) if compact else indent_json(joined) if raws else "[]")
        return
    if not raws:
        ctx.out()
    for raw in raws:
        try:
            ctx.out(template.execute(json.loads(raw)))
        except TemplateError as exc:
            raise StatusError(f"template parsing error: {exc}") from None


def _build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None,
                   help="Format output using a custom template")
    p.add_argument("-s", "--size", action="store_true",
                   help="Display total file sizes if the type is container")
    p.add_argument("--type", default="", help="Return JSON for specified type")


def _typed_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None,
                   help="Format output using a custom template")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")


def _run(ctx: Context, ns: argparse.Namespace) -> int:
    if ns.type and ns.type not in ENDPOINTS:
        valid = ", ".join(f'"{k}"' for k in sorted(ENDPOINTS))
        raise StatusError(f'unknown type: "{ns.type}": must be one of {valid}')
    kinds = (ns.type,) if ns.type else ORDER
    return inspect_all(ctx, ns.args, kinds, ns.format, ns.size)


def _typed(kind: str) -> Callable[[Context, argparse.Namespace], int]:
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        return inspect_all(ctx, ns.args, (kind,), ns.format, getattr(ns, "size", False))
    return run


def _image_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None,
                   help="Format output using a custom template")
    p.add_argument("--platform", default="", help="Inspect a specific platform")


INSPECT = Command("inspect", "[OPTIONS] NAME|ID [NAME|ID...]",
                  "Return low-level information on Docker objects", _build, _run, (1, None))
CONTAINER_INSPECT = Command("inspect", "[OPTIONS] CONTAINER [CONTAINER...]",
                            "Display detailed information on one or more containers",
                            _typed_build, _typed("container"), (1, None))
IMAGE_INSPECT = Command("inspect", "[OPTIONS] IMAGE [IMAGE...]",
                        "Display detailed information on one or more images", _image_build,
                        _typed("image"), (1, None))
COMMANDS = [INSPECT]
