"""Placement constraints (``node.role==manager``, ``node.labels.zone!=b``, …) and node matching.

The expression syntax is Docker's: ``<key>==<value>`` or ``<key>!=<value>`` with keys
``node.id``, ``node.hostname``, ``node.role``, ``node.platform.os``, ``node.platform.arch``,
``node.labels.<name>`` and ``engine.labels.<name>``. Values compare case-insensitively except
labels, as in swarmkit.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.cluster.objects import Node
from dockyard.errors import InvalidArgument

_EXPR = re.compile(r"^\s*([\w.\-]+)\s*(==|!=)\s*(.*?)\s*$")
_KEYS = ("node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch")


@dataclass(frozen=True)
class Constraint:
    key: str
    equal: bool
    value: str


def parse(expression: str) -> Constraint:
    match = _EXPR.match(expression)
    if not match or not match.group(3):
        raise InvalidArgument(f"invalid constraint: {expression!r}: expected "
                              "<key>==<value> or <key>!=<value>")
    key, op, value = match.groups()
    if key not in _KEYS and not key.startswith(("node.labels.", "engine.labels.")):
        raise InvalidArgument(f"constraint expected one operator from ==, != and a known key, "
                              f"got {key!r}")
    return Constraint(key, op == "==", value)


def constraints_of(template: Mapping[str, Any]) -> list[Constraint]:
    return [parse(c) for c in (template.get("Placement") or {}).get("Constraints") or []]


def _node_value(key: str, node: Node) -> tuple[str | None, bool]:
    """(value, case sensitive) of ``key`` on ``node``; None when the node has no such key."""
    if key.startswith("node.labels."):
        return node.labels.get(key[len("node.labels."):]), True
    if key.startswith("engine.labels."):
        return None, True
    return {"node.id": node.id, "node.hostname": node.hostname, "node.role": node.role,
            "node.platform.os": "linux", "node.platform.arch": "x86_64"}[key], False


def matches(constraints: Sequence[Constraint], node: Node) -> bool:
    for c in constraints:
        value, exact = _node_value(c.key, node)
        same = value is not None and (value == c.value if exact
                                      else value.lower() == c.value.lower())
        if same != c.equal:
            return False
    return True
