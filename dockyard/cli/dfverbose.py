"""``system df -v``: the per-object space usage tables."""
from __future__ import annotations

import time
from typing import Any

from dockyard.cli.format import render, resolve, truncate_id
from dockyard.cli.gofuncs import GoMap
from dockyard.cli.images import HEADERS as IMAGE_HEADERS
from dockyard.cli.images import image_rows
from dockyard.cli.ps import HEADERS as PS_HEADERS
from dockyard.cli.ps import ContainerContext
from dockyard.cli.units import human_duration, human_size, parse_rfc3339

IMAGES = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t"
          "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
CONTAINERS = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t"
              "{{.RunningFor}}\t{{.Status}}\t{{.Names}}")
VOLUMES = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
CACHE = ("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t"
         "{{.UsageCount}}\t{{.Shared}}")
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
CACHE_HEADERS = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
                 "CreatedSince": "CREATED", "LastUsedSince": "LAST USED",
                 "UsageCount": "USAGE", "Shared": "SHARED"}


class _ContainerUsage(ContainerContext):
    """Verbose df rows show only the writable layer's size."""

    @property
    def Size(self) -> str:
        return human_size(self.c.get("SizeRw", 0) or 0, 3)


def _volume_row(v: dict[str, Any]) -> GoMap:
    usage = v.get("UsageData") or {}
    size = usage.get("Size", -1)
    return GoMap({"Name": v.get("Name", ""), "Links": str(usage.get("RefCount", 0)),
                  "Size": "N/A" if size in (None, -1) else human_size(size)})


def _since(stamp: str, now: float) -> str:
    if not stamp:
        return ""
    return human_duration(now - parse_rfc3339(stamp)) + " ago"


def _cache_row(b: dict[str, Any], now: float) -> GoMap:
    return GoMap({"ID": truncate_id(str(b.get("ID", ""))), "CacheType": b.get("Type", ""),
                  "Size": human_size(b.get("Size", 0) or 0),
                  "CreatedSince": _since(b.get("CreatedAt", ""), now),
                  "LastUsedSince": _since(b.get("LastUsedAt") or "", now),
                  "UsageCount": str(b.get("UsageCount", 0)),
                  "Shared": "true" if b.get("Shared") else "false"})


def verbose(du: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    # docker shows one row per image: its first tag only (or <none>), no digests
    images = [image_rows({**image, "RepoTags": (image.get("RepoTags") or [])[:1],
                          "RepoDigests": []}, False, True, now)[0]
              for image in du.get("Images") or []]
    containers = [_ContainerUsage(c, now=now) for c in du.get("Containers") or []]
    volumes = [_volume_row(v) for v in du.get("Volumes") or []]
    cache = du.get("BuildCache") or []
    cache_size = du.get("BuilderSize") or sum(int(b.get("Size") or 0) for b in cache
                                              if not b.get("Shared"))
    return ("Images space usage:\n\n" + render(resolve(IMAGES, IMAGES), images, IMAGE_HEADERS)
            + "\nContainers space usage:\n\n"
            + render(resolve(CONTAINERS, CONTAINERS), containers, PS_HEADERS)
            + "\nLocal Volumes space usage:\n\n"
            + render(resolve(VOLUMES, VOLUMES), volumes, VOLUME_HEADERS)
            + f"\nBuild cache usage: {human_size(cache_size)}\n\n"
            + render(resolve(CACHE, CACHE), [_cache_row(b, now) for b in cache],
                     CACHE_HEADERS))
