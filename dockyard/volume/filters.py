"""The filters of ``GET /volumes`` and ``POST /volumes/prune``, with moby's matching rules
and error texts."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from dockyard.volume.store import Volume

LIST_FILTERS = frozenset({"dangling", "name", "driver", "label"})
PRUNE_FILTERS = frozenset({"label", "label!", "all"})


def check_filters(filters: Mapping[str, Any], accepted: frozenset[str]) -> None:
    for key in filters:
        if key not in accepted:
            raise InvalidArgument(f"invalid filter '{key}'")


def parse_bool(key: str, value: str) -> bool:
    """Go's strconv.ParseBool, as the ``all`` prune filter uses it."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise InvalidArgument(f"invalid filter '{key}': strconv.ParseBool: parsing "
                          f'"{value}": invalid syntax')


def _dangling(values: Sequence[str]) -> bool:
    is_true = "1" in values or "true" in values
    if is_true == ("0" in values or "false" in values):
        raise InvalidArgument(f"invalid filter 'dangling=[{' '.join(values)}]'")
    return is_true


def _match_kv(wanted: Sequence[str], labels: Mapping[str, str]) -> bool:
    """moby's MatchKVList: every ``key`` or ``key=value`` must match (nothing wanted: true)."""
    if not wanted:
        return True
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _name_match(patterns: Sequence[str], name: str) -> bool:
    for pattern in patterns:
        try:
            if pattern == name or re.search(pattern, name):
                return True
        except re.error:
            continue
    return False


def filter_volumes(volumes: Sequence[Volume], filters: Mapping[str, Sequence[str]],
                   used: Callable[[str], bool]) -> list[Volume]:
    drivers, names = filters.get("driver") or (), filters.get("name") or ()
    not_labels = filters.get("label!") or ()
    dangling = _dangling(filters["dangling"]) if "dangling" in filters else None
    out: list[Volume] = []
    for volume in volumes:
        if drivers and volume.driver not in drivers:
            continue
        if names and not _name_match(names, volume.name):
            continue
        if not _match_kv(filters.get("label") or (), volume.labels):
            continue
        if not_labels and _match_kv(not_labels, volume.labels):
            continue
        if dangling is not None and used(volume.name) == dangling:
            continue
        out.append(volume)
    return out

