"""Image commands: images (image ls), tag, rmi, history, image prune."""
from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import quote

from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.containers import confirm
from dockyard.cli.context import Context
from dockyard.cli.format import ellipsis, render, resolve, truncate_id
from dockyard.cli.ps import parse_filters
from dockyard.cli.refs import familiar_name, normalize_name, split_reference
from dockyard.cli.registry import api_failure
from dockyard.cli.units import go_time_string, human_duration, human_size
from dockyard.client.errors import APIError

DEFAULT_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DIGEST_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t" \
                "{{.Size}}"
HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
           "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
           "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
           "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}


class ImageContext:
    """One row of ``docker images``: an image under one repository/tag (or digest)."""

    def __init__(self, image: dict[str, Any], repo: str, tag: str, digest: str,
                 trunc: bool = True, now: float | None = None) -> None:
        self.i = image
        self.Repository = repo
        self.Tag = tag
        self.Digest = digest
        self.trunc = trunc
        self.now = time.time() if now is None else now

    @property
    def ID(self) -> str:
        ident = self.i.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    @property
    def CreatedSince(self) -> str:
        return human_duration(self.now - self.i.get("Created", 0)) + " ago"

    @property
    def CreatedAt(self) -> str:
        return go_time_string(self.i.get("Created", 0))

    @property
    def Size(self) -> str:
        return human_size(self.i.get("Size", 0) or 0, 3)

    @property
    def VirtualSize(self) -> str:
        return human_size(self.i.get("VirtualSize", self.i.get("Size", 0)) or 0)

    @property
    def Containers(self) -> str:
        n = self.i.get("Containers", -1)
        return "N/A" if n is None or n == -1 else str(n)

    @property
    def SharedSize(self) -> str:
        n = self.i.get("SharedSize", -1)
        return "N/A" if n is None or n == -1 else human_size(n)

    @property
    def UniqueSize(self) -> str:
        size, shared = self.i.get("Size", -1), self.i.get("SharedSize", -1)
        if size in (None, -1) or shared in (None, -1):
            return "N/A"
        return human_size(size - shared)

    def to_json(self) -> dict[str, str]:
        keys = ("Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
                "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize")
        return {k: getattr(self, k) for k in keys}


def _dangling(image: dict[str, Any]) -> bool:
    tags, digests = image.get("RepoTags") or [], image.get("RepoDigests") or []
    return (not tags and not digests) or (tags == ["<none>:<none>"]
                                          and digests == ["<none>@<none>"])


def image_rows(image: dict[str, Any], digests_wanted: bool, trunc: bool,
               now: float) -> list[ImageContext]:
    """docker's imageFormatTaggedAndDigest (repositories sorted for stable output)."""
    if _dangling(image):
        return [ImageContext(image, "<none>", "<none>", "<none>", trunc, now)]
    tags: dict[str, list[str]] = {}
    digests: dict[str, list[str]] = {}
    for ref in image.get("RepoTags") or []:
        name, tag, _ = split_reference(ref)
        if tag and name != "<none>":
            tags.setdefault(familiar_name(name), []).append(tag)
    for ref in image.get("RepoDigests") or []:
        name, _, digest = split_reference(ref)
        if digest and name != "<none>":
            digests.setdefault(familiar_name(name), []).append(digest)
    rows: list[ImageContext] = []
    for repo in sorted(tags):
        repo_digests = digests.pop(repo, []) if digests_wanted else []
        digests.pop(repo, None)
        for tag in tags[repo]:
            for digest in repo_digests or ["<none>"]:
                rows.append(ImageContext(image, repo, tag, digest, trunc, now))
    for repo in sorted(digests):
        for digest in digests[repo] if digests_wanted else [""]:
            rows.append(ImageContext(image, repo, "<none>", digest, trunc, now))
    return rows


def _images_build(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Show all images (default hides intermediate images)")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output based on conditions provided")
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--tree", action="store_true", help="List multi-platform images as a tree")


def _images(ctx: Context, ns: argparse.Namespace) -> int:
    try:
        filters = parse_filters(ns.filter)
    except ValueError as exc:
        raise StatusError(str(exc)) from None
    if ns.args:
        filters.setdefault("reference", {})[ns.args[0]] = True
    query = {"all": ns.all or None, "filters": filters or None}
    images = ctx.client.get("/images/json", query) or []
    now = time.time()
    rows = [row for image in images
            for row in image_rows(image, ns.digests, not ns.no_trunc, now)]
    if ns.quiet:
        fmt = "{{.ID}}"
    else:
        fmt = ns.format or (DIGEST_FORMAT if ns.digests else DEFAULT_FORMAT)
    default = DIGEST_FORMAT if ns.digests else DEFAULT_FORMAT
    ctx.stdout.write(render(resolve(fmt, default), rows, HEADERS))
    return 0


def _tag(ctx: Context, ns: argparse.Namespace) -> int:
    source, target = ns.args
    name, tag, digest = split_reference(target)
    if digest:
        raise StatusError("refusing to create a tag with a digest reference")
    query = {"repo": normalize_name(name), "tag": tag or "latest"}
    ctx.client.post(f"/images/{quote(source, safe=':@/')}/tag", query)
    return 0


def _rmi_build(p: FlagParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("--platform", action="append", default=[],
                   help="Remove only the given platform variant")


def _rmi(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"force": ns.force or None, "noprune": ns.no_prune or None}
    errors: list[str] = []
    for name in ns.args:
        try:
            items = ctx.client.delete(f"/images/{quote(name, safe=':@/')}", query) or []
        except APIError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        for item in items:
            if item.get("Untagged"):
                ctx.out(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                ctx.out(f"Deleted: {item['Deleted']}")
    if errors:
        raise StatusError("\n".join(errors))
    return 0


HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


class HistoryContext:
    def __init__(self, h: dict[str, Any], trunc: bool, human: bool, now: float) -> None:
        self.h, self.trunc, self.human, self.now = h, trunc, human, now

    @property
    def ID(self) -> str:
        ident = self.h.get("Id", "")
        return truncate_id(ident) if self.trunc else ident

    @property
    def CreatedAt(self) -> str:
        from datetime import datetime
        stamp = datetime.fromtimestamp(self.h.get("Created", 0)).astimezone()
        text = stamp.isoformat(timespec="seconds")
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    @property
    def CreatedSince(self) -> str:
        if not self.human:
            return self.CreatedAt
        return human_duration(self.now - self.h.get("Created", 0)) + " ago"

    @property
    def CreatedBy(self) -> str:
        text = (self.h.get("CreatedBy") or "").replace("\t", " ")
        return ellipsis(text, 45) if self.trunc else text

    @property
    def Size(self) -> str:
        size = self.h.get("Size", 0) or 0
        return human_size(size, 3) if self.human else str(size)

    @property
    def Comment(self) -> str:
        return str(self.h.get("Comment") or "")

    def to_json(self) -> dict[str, str]:
        keys = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")
        return {k: getattr(self, k) for k in keys}


def _history_build(p: FlagParser) -> None:
    p.add_argument("--format", default=None, help="Format output using a custom template")
    p.add_argument("-H", "--human", action="store_true", default=True,
                   help="Print sizes and dates in human readable format (default true)")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--platform", default="", help="Show history for the given platform")


def _history(ctx: Context, ns: argparse.Namespace) -> int:
    query = {"platform": ns.platform or None}
    items = ctx.client.get(f"/images/{quote(ns.args[0], safe=':@/')}/history", query) or []
    now = time.time()
    rows = [HistoryContext(h, not ns.no_trunc, ns.human, now) for h in items]
    default = HISTORY_FORMAT if ns.human else HISTORY_FORMAT.replace("CreatedSince", "CreatedAt")
    fmt = "{{.ID}}" if ns.quiet else (ns.format or default)
    ctx.stdout.write(render(resolve(fmt, default), rows, HISTORY_HEADERS))
    return 0


def _prune_build(p: FlagParser) -> None:
    p.add_argument("-a", "--all", action="store_true",
                   help="Remove all unused images, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[],
                   help="Provide filter values (e.g. \"until=<timestamp>\")")


def prune_images(ctx: Context, filters: list[str], everything: bool) -> tuple[int, str]:
    parsed = parse_filters(filters)
    parsed["dangling"] = {"false" if everything else "true": True}
    try:
        report = ctx.client.post("/images/prune", {"filters": parsed}) or {}
    except APIError as exc:
        raise api_failure(exc, "pruning images") from None
    lines = []
    for item in report.get("ImagesDeleted") or []:
        if item.get("Untagged"):
            lines.append(f"untagged: {item['Untagged']}\n")
        if item.get("Deleted"):
            lines.append(f"deleted: {item['Deleted']}\n")
    output = "Deleted Images:\n" + "".join(lines) if lines else ""
    return int(report.get("SpaceReclaimed") or 0), output


def _prune(ctx: Context, ns: argparse.Namespace) -> int:
    warning = ("WARNING! This will remove all images without at least one container "
               "associated to them." if ns.all else
               "WARNING! This will remove all dangling images.")
    if not ns.force and not confirm(ctx, warning):
        return 0
    space, output = prune_images(ctx, ns.filter, ns.all)
    if output:
        ctx.out(output)
    ctx.out(f"Total reclaimed space: {human_size(space)}")
    return 0


IMAGES = Command("images", "[OPTIONS] [REPOSITORY[:TAG]]", "List images", _images_build,
                 _images, (0, 1))
TAG = Command("tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
              "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", lambda p: None, _tag,
              (2, 2))
RMI = Command("rmi", "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", _rmi_build,
              _rmi, (1, None))
HISTORY = Command("history", "[OPTIONS] IMAGE", "Show the history of an image",
                  _history_build, _history, (1, 1))
PRUNE = Command("prune", "[OPTIONS]", "Remove unused images", _prune_build, _prune)
COMMANDS = [IMAGES, TAG, RMI, HISTORY]
