"""``docker logs --details``: the extra attributes the ``labels``/``env`` (and ``*-regex``)
log options add to each line, as Docker's ``logger.Info.ExtraAttributes`` computes them.

They depend only on the container's config, so they are computed when the log is read."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_plus

from dockyard.metadata.containers import ContainerRecord


def extra_attributes(rec: ContainerRecord) -> dict[str, str]:
    opts: dict[str, Any] = (rec.host_config.get("LogConfig") or {}).get("Config") or {}
    labels: dict[str, str] = rec.config.get("Labels") or {}
    env = dict(e.partition("=")[::2] for e in rec.config.get("Env") or [])
    out: dict[str, str] = {}
    for source, key, regex_key in ((labels, "labels", "labels-regex"),
                                   (env, "env", "env-regex")):
        for name in filter(None, (opts.get(key) or "").split(",")):
            if name in source:
                out[name] = source[name]
        if opts.get(regex_key):
            pattern = re.compile(opts[regex_key])
            out.update({k: v for k, v in source.items() if pattern.search(k)})
    return out


def details_prefix(rec: ContainerRecord) -> bytes:
    """What ``details=1`` puts before each line: ``k=v,k2=v2`` (sorted, escaped) + space."""
    attrs = extra_attributes(rec)
    text = ",".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(attrs.items()))
    return text.encode() + b" "
