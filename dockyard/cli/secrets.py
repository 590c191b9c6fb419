"""``secret create|ls|inspect|rm`` and ``config create|ls|inspect|rm``, as the docker CLI does
them (one implementation, the kind a parameter)."""
from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Mapping
from typing import Any

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.containers import for_each
from dockyard.cli.context import Context
from dockyard.cli.format import render, resolve
from dockyard.cli.inspect import inspect_all
from dockyard.cli.listopts import kv_map
from dockyard.cli.nodes import filter_flag
from dockyard.cli.swarmfmt import choose, natural_key
from dockyard.client.errors import APIError
from dockyard.util.timefmt import human_duration, parse_rfc3339

FORMATS = {"secret": "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
           "config": "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"}
HEADERS = {"ID": "ID", "Name": "NAME", "Driver": "DRIVER", "CreatedAt": "CREATED",
           "UpdatedAt": "UPDATED", "Labels": "LABELS"}


class FileObjectContext:
    def __init__(self, kind: str, obj: Mapping[str, Any], now: float) -> None:
        self.kind, self.o, self.now = kind, obj, now
        self.spec: Mapping[str, Any] = obj.get("Spec") or {}

    @property
    def ID(self) -> str:
        return str(self.o.get("ID", ""))

    @property
    def Name(self) -> str:
        return str(self.spec.get("Name", ""))

    @property
    def Driver(self) -> str:
        return str((self.spec.get("Driver") or {}).get("Name", ""))

    def _ago(self, key: str) -> str:
        try:
            return human_duration(self.now - parse_rfc3339(str(self.o.get(key) or ""))) + " ago"
        except ValueError:
            return ""

    @property
    def CreatedAt(self) -> str:
        return self._ago("CreatedAt")

    @property
    def UpdatedAt(self) -> str:
        return self._ago("UpdatedAt")

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (self.spec.get("Labels") or {}).items())

    def Label(self, name: str) -> str:
        return str((self.spec.get("Labels") or {}).get(name, ""))

    def to_json(self) -> dict[str, str]:
        out = {"CreatedAt": self.CreatedAt, "Driver": self.Driver, "ID": self.ID,
               "Labels": self.Labels, "Name": self.Name, "UpdatedAt": self.UpdatedAt}
        if self.kind == "config":
            del out["Driver"]
        return out


def _create_build(kind: str) -> Any:
    def build(p: FlagParser) -> None:
        if kind == "secret":
            p.add_argument("-d", "--driver", default="", help="Secret driver")
        p.add_argument("-l", "--label", action="append", default=[], metavar="list",
                       help=f"{kind.capitalize()} labels")
        p.add_argument("--template-driver", default="", help="Template driver")
    return build


def _read(path: str, ctx: Context) -> bytes:
    if path == "-":
        return bytes(ctx.bin_stdin.read())
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise StatusError(f'Error reading content from "{path}": open {path}: '
                          f"{(exc.strerror or str(exc)).lower()}") from None


def _create(kind: str) -> Any:
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        name = ns.args[0]
        driver = getattr(ns, "driver", "")
        if not driver and len(ns.args) < 2:
            raise StatusError(f'"docker {kind} create" requires exactly 2 arguments.')
        spec: dict[str, Any] = {"Name": name, "Labels": kv_map(ns.label)}
        if len(ns.args) > 1:
            spec["Data"] = base64.b64encode(_read(ns.args[1], ctx)).decode()
        if driver:
            spec["Driver"] = {"Name": driver}
        if ns.template_driver:
            spec["Templating"] = {"Name": ns.template_driver}
        try:
            created = ctx.client.post(f"/{kind}s/create", json_body=spec) or {}
        except APIError as exc:
            raise StatusError(f"Error response from daemon: {exc.message}") from None
        ctx.out(str(created.get("ID", "")))
        return 0
    return run


def _ls_build(p: FlagParser) -> None:
    p.add_argument("--format", default=None, help="Format output using a custom template")
    filter_flag(p)
    p.add_argument("-q", "--quiet", action="store_true", help="Only display IDs")


def _ls(kind: str) -> Any:
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        query = {"filters": _filters(ns.filter)} if ns.filter else None
        try:
            found = ctx.client.get(f"/{kind}s", query) or []
        except APIError as exc:
            raise StatusError(f"Error response from daemon: {exc.message}") from None
        found.sort(key=lambda o: natural_key(str((o.get("Spec") or {}).get("Name", ""))))
        now = time.time()
        rows = [FileObjectContext(kind, o, now) for o in found]
        fmt = resolve(choose(ns.format, ns.quiet, FORMATS[kind]), FORMATS[kind])
        ctx.stdout.write(render(fmt, rows, HEADERS))
        return 0
    return run


def _filters(items: list[str]) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        if item:
            key, _, value = item.partition("=")
            out.setdefault(key.strip().lower(), {})[value] = True
    return out


def _inspect_build(p: FlagParser) -> None:
    p.add_argument("-f", "--format", default=None, help="Format output using a custom template")
    p.add_argument("--pretty", action="store_true",
                   help="Print the information in a human friendly format")


def _inspect(kind: str) -> Any:
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        fmt = "pretty" if ns.pretty else ns.format
        if fmt != "pretty":
            return inspect_all(ctx, list(ns.args), (kind,), fmt)
        errors = []
        for ref in ns.args:
            try:
                obj = ctx.client.get(f"/{kind}s/{ref}") or {}
            except APIError as exc:
                errors.append(f"Error response from daemon: {exc.message}")
                continue
            ctx.stdout.write(pretty(kind, obj) + "\n")
        if errors:
            raise StatusError("\n".join(errors))
        return 0
    return run


def go_time(text: str) -> str:
    """An RFC 3339 UTC time as Go's ``time.Time.String`` prints it, after the docker CLI's
    PrettyPrint (first letter upper-cased, the rest lower-cased: ``+0000 utc``)."""
    date, _, clock = text.rstrip("Z").partition("T")
    whole, dot, frac = clock.partition(".")
    frac = frac.rstrip("0")
    return f"{date} {whole}{'.' + frac if frac else ''} +0000 utc"


def pretty(kind: str, obj: Mapping[str, Any]) -> str:
    """``inspect --pretty`` (docker's templates, tabs and padding included)."""
    spec = obj.get("Spec") or {}
    labels = spec.get("Labels") or {}
    label_lines = "".join(f"\n - {k}" + (f"={v}" if v else "") for k, v in sorted(labels.items()))
    labels_text = f"\nLabels:{label_lines}" if labels else ""
    created, updated = go_time(str(obj.get("CreatedAt", ""))), go_time(
        str(obj.get("UpdatedAt", "")))
    if kind == "secret":
        driver = (spec.get("Driver") or {}).get("Name", "")
        return (f"ID:              {obj.get('ID', '')}\nName:              {spec.get('Name', '')}"
                f"{labels_text}\nDriver:            {driver}\nCreated at:        {created}\n"
                f"Updated at:        {updated}")
    data = base64.b64decode(str(spec.get("Data") or "")).decode("utf-8", "replace")
    return (f"ID:\t\t\t{obj.get('ID', '')}\nName:\t\t\t{spec.get('Name', '')}{labels_text}\n"
            f"Created at:            \t{created}\nUpdated at:            \t{updated}\n"
            f"Data:\n{data}")


def _rm(kind: str) -> Any:
    def run(ctx: Context, ns: argparse.Namespace) -> int:
        return for_each(ctx, list(ns.args), lambda n: ctx.client.delete(f"/{kind}s/{n}"))
    return run


def _group(kind: str) -> dict[str, Command]:
    what = kind.capitalize()
    create = Command("create", f"[OPTIONS] {kind.upper()} " + ("[file|-]" if kind == "secret"
                                                               else "file|-"),
                     f"Create a {kind} from a file or STDIN as content", _create_build(kind),
                     _create(kind), (1, 2) if kind == "secret" else (2, 2))
    ls = Command("ls", "[OPTIONS]", f"List {kind}s", _ls_build, _ls(kind), (0, 0),
                 aliases=("list",))
    inspect = Command("inspect", f"[OPTIONS] {what.upper()} [{what.upper()}...]",
                      f"Display detailed information on one or more {kind}s", _inspect_build,
                      _inspect(kind), (1, None))
    rm = Command("rm", f"{kind.upper()} [{kind.upper()}...]", f"Remove one or more {kind}s",
                 lambda p: None, _rm(kind), (1, None), aliases=("remove",))
    return {"create": create, "ls": ls, "list": ls, "inspect": inspect, "rm": rm,
            "remove": rm}


SECRET = _group("secret")
CONFIG = _group("config")
