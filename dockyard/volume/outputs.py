"""What parsed mount specs become: the OCI mounts of config.json (:func:`runtime_mounts`) and
the ``Mounts`` array of ``docker inspect`` (:func:`inspect_mounts`). The specs come from
:mod:`dockyard.volume.specs`, which re-exports these names.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.diff.safepath import resolve_in_root
from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from dockyard.volume.specs import MountSpec


@dataclass(frozen=True)
class OciMount:
    """Fields of ``runtime.spec_types.Mount``, in its order: ``Mount(*m)`` converts."""

    destination: str
    type: str
    source: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class RuntimeMounts:
    """What ``SpecOptions`` takes: ``mounts`` (binds and volumes) and ``tmpfs``
    (destination → data; the runtime adds Docker's ``noexec,nosuid,nodev,rprivate``)."""

    mounts: tuple[OciMount, ...]
    tmpfs: dict[str, str]


def host_source(spec: MountSpec) -> str:
    """The host path to bind: the source, or the volume's subpath resolved inside it."""
    if not spec.subpath:
        return spec.source
    path = resolve_in_root(Path(spec.source), spec.subpath)
    if not path.exists():
        raise InvalidArgument(f"cannot access path {path}: no such file or directory")
    return str(path)


def runtime_mounts(specs: Iterable[MountSpec]) -> RuntimeMounts:
    """Resolved specs as Docker puts them in config.json: ``rbind`` (``bind`` if
    non-recursive), ``ro`` when read-only, then the propagation if one is set."""
    mounts: list[OciMount] = []
    tmpfs: dict[str, str] = {}
    for spec in specs:
        if spec.type == "tmpfs":
            tmpfs[spec.destination] = ",".join(spec.options)
            continue
        if not spec.source:
            raise InvalidArgument(f"mount {spec.destination}: volume not resolved")
        options = ["bind" if spec.non_recursive else "rbind"]
        if spec.read_only:
            options.append("ro")
        if spec.propagation:
            options.append(spec.propagation)
        mounts.append(OciMount(spec.destination, "bind", host_source(spec), tuple(options)))
    return RuntimeMounts(tuple(mounts), tmpfs)


def inspect_mounts(specs: Iterable[MountSpec]) -> list[dict[str, Any]]:
    """``docker inspect``'s ``Mounts`` (``HostConfig.Tmpfs`` entries are not listed)."""
    out: list[dict[str, Any]] = []
    for spec in specs:
        if spec.origin == "tmpfs":
            continue
        item: dict[str, Any] = {"Type": spec.type}
        if spec.type == "volume":
            item["Name"] = spec.volume_name
        item.update(Source=spec.source, Destination=spec.destination)
        if spec.type == "volume":
            item["Driver"] = spec.driver
        item.update(Mode=spec.mode, RW=not spec.read_only, Propagation=spec.propagation)
        out.append(item)
    return out
