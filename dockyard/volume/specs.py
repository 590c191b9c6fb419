"""Every way a container asks for mounts, parsed into one typed list (moby's ``volume/mounts``).

Sources, in Docker's order (``daemon.registerMountPoints`` then the image's volumes):

1. ``HostConfig.VolumesFrom`` — ``other[:ro|:rw]``: copies of the other container's mounts
   (never copied-up again); a later mount at the same destination replaces one of these.
2. ``HostConfig.Binds`` — ``-v`` strings: ``/host:/ctr[:mode]`` (bind), ``name:/ctr[:mode]``
   (named volume), ``/ctr`` (anonymous volume). Modes: ``ro|rw``, ``z|Z`` (accepted, ignored),
   one propagation, ``nocopy``, ``consistent|cached|delegated``.
3. ``HostConfig.Mounts`` — ``--mount`` as the API carries it (``Type``, ``Source``, ``Target``,
   ``ReadOnly``, ``BindOptions``, ``VolumeOptions``, ``TmpfsOptions``).
4. ``HostConfig.Tmpfs`` — ``{"/run": "size=64m"}`` (not listed in ``docker inspect`` Mounts).
5. the image's ``Config.Volumes`` — anonymous volumes, unless the destination is taken.

Duplicates among 2-4 are ``Duplicate mount point: /x``. Errors keep Docker's texts; all are
InvalidArgument (400). The result is plain data: the engine creates the volumes
(:meth:`MountSpec.with_volume`), then :func:`runtime_mounts` gives the OCI mounts and
:func:`inspect_mounts` the ``Mounts`` array of ``docker inspect`` (both in
:mod:`dockyard.volume.outputs`, re-exported here).
"""
from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.volume.outputs import OciMount as OciMount
from dockyard.volume.outputs import RuntimeMounts as RuntimeMounts
from dockyard.volume.outputs import host_source as host_source
from dockyard.volume.outputs import inspect_mounts as inspect_mounts
from dockyard.volume.outputs import runtime_mounts as runtime_mounts
from dockyard.volume.store import DEFAULT_DRIVER, Volume, validate_name

PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
DEFAULT_PROPAGATION = "rprivate"
_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_CONSISTENCY = ("consistent", "cached", "delegated")
_TMPFS_OPTIONS = ("exec", "noexec")
KINDS = ("bind", "volume", "tmpfs")


@dataclass(frozen=True)
class MountSpec:
    """One mount a container asked for. ``source`` is the host path (for a volume: its
    ``_data`` once resolved by :meth:`with_volume`). ``origin`` says where it came from:
    ``binds``, ``mounts``, ``tmpfs``, ``image`` or ``volumes-from``."""

    type: str
    destination: str
    source: str = ""
    read_only: bool = False
    propagation: str = ""
    options: tuple[str, ...] = ()  # tmpfs data: ("size=64m", "mode=1777")
    volume_name: str = ""  # "" for an anonymous volume until it is created
    anonymous: bool = False
    nocopy: bool = False
    driver: str = ""
    mode: str = ""  # Docker's Mode column: the -v mode string, "z" for local volumes
    volume_options: tuple[tuple[str, str], ...] = ()  # --mount volume-opt=k=v
    volume_labels: tuple[tuple[str, str], ...] = ()  # --mount volume-label=k=v
    subpath: str = ""  # --mount volume-subpath
    create_source: bool = False  # -v binds: Docker makes a missing host directory
    non_recursive: bool = False  # bind-nonrecursive: "bind" instead of "rbind"
    origin: str = "binds"

    @property
    def copy_up(self) -> bool:
        """Whether image content at the destination is copied into a new, empty volume."""
        return self.type == "volume" and not self.nocopy and self.origin != "volumes-from"

    def with_volume(self, volume: Volume) -> MountSpec:
        """This spec bound to the volume the engine created or found for it."""
        return replace(self, volume_name=volume.name, source=str(volume.mountpoint),
                       driver=volume.driver)

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped, for the container record (see :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MountSpec:
        kw = dict(data)
        kw["options"] = tuple(kw.get("options") or ())
        for key in ("volume_options", "volume_labels"):
            kw[key] = tuple((str(k), str(v)) for k, v in kw.get(key) or ())
        return cls(**kw)


def _spec_error(raw: str) -> InvalidArgument:
    return InvalidArgument(f"invalid volume specification: '{raw}'")


def _mode_error(mode: str) -> InvalidArgument:
    return InvalidArgument(f"invalid mode: {mode}")


def _config_error(kind: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"invalid mount config for type {json.dumps(kind)}: {message}")


def valid_mode(mode: str) -> bool:
    """moby's linuxValidMountMode: known words, at most one of each group."""
    if mode == "":
        return True
    groups = (_RW_MODES, _LABEL_MODES, PROPAGATIONS, ("nocopy",), _CONSISTENCY)
    counts = [0] * len(groups)
    for word in mode.split(","):
        index = next((i for i, group in enumerate(groups) if word in group), None)
        if index is None:
            return False
        counts[index] += 1
    return max(counts) <= 1


def _propagation_of(mode: str) -> str:
    return next((w for w in mode.split(",") if w in PROPAGATIONS), "")


def _check_target(kind: str, target: str) -> str:
    if not target:
        raise _config_error(kind, "field Target must not be empty")
    if posixpath.normpath(target.replace("\\", "/")) == "/":
        raise _config_error(kind, "invalid specification: destination can't be '/'")
    if not target.replace("\\", "/").startswith("/"):
        raise _config_error(kind, f"invalid mount path: '{target}' mount path must be absolute")
    return posixpath.normpath(target)


def parse_bind(raw: str, volume_driver: str = "") -> MountSpec:
    """One ``HostConfig.Binds`` entry (moby's ParseMountRaw)."""
    parts = raw.split(":", 3)
    if parts[0] == "" or len(parts) > 3:
        raise _spec_error(raw)
    mode = ""
    if len(parts) == 2 and valid_mode(parts[1]):
        raise _spec_error(raw)  # "/foo:rw": a destination and a mode, but no source
    source, target = ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if len(parts) == 3:
        mode = parts[2]
    if not valid_mode(mode):
        raise _mode_error(mode)
    words = mode.split(",")
    kind = "bind" if source.startswith("/") else "volume"
    try:
        destination = _check_target(kind, target)
        if kind == "bind" and "nocopy" in words:
            raise _config_error(kind, "field VolumeOptions must not be specified")
        if kind == "volume" and _propagation_of(mode):
            raise _config_error(kind, "field BindOptions must not be specified")
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid volume specification: '{raw}': {err}") from None
    if kind == "bind":
        return MountSpec("bind", destination, posixpath.normpath(source), "ro" in words,
                         _propagation_of(mode) or DEFAULT_PROPAGATION, mode=mode,
                         create_source=True, origin="binds")
    _check_volume_name(source)
    return MountSpec("volume", destination, read_only="ro" in words, volume_name=source,
                     anonymous=not source, nocopy="nocopy" in words,
                     driver=volume_driver or DEFAULT_DRIVER, mode=mode or "z", origin="binds")


def _check_volume_name(name: str) -> None:
    if name:
        validate_name(name)


def _opt(mount: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = mount.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"invalid {key}: {value!r}")
    return value


def tmpfs_data(options: Mapping[str, Any] | None, read_only: bool) -> tuple[str, ...]:
    """moby's ConvertTmpfsOptions: ``ro``, ``mode=<octal>``, ``size=<n>[kmg]``, exec flags."""
    out = ["ro"] if read_only else []
    opts = options or {}
    mode = int(opts.get("Mode") or 0)
    if mode:
        out.append(f"mode={mode:o}")
    size = int(opts.get("SizeBytes") or 0)
    if size:
        out.append(_size_text(size))
    for item in opts.get("Options") or []:
        if not isinstance(item, list) or not 1 <= len(item) <= 2:
            raise InvalidArgument("invalid option array length")
        if item[0] not in _TMPFS_OPTIONS:
            raise InvalidArgument(f"invalid option: {item[0]}")
        out.append("=".join(str(part) for part in item))
    return tuple(out)


def _size_text(size: int) -> str:
    for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % divisor == 0:
            return f"size={size // divisor}{suffix}"
    return f"size={size}"


def parse_mount(mount: Mapping[str, Any], exists: Callable[[str], bool] = os.path.exists
                ) -> MountSpec:
    """One ``HostConfig.Mounts`` entry (moby's ParseMountSpec with its validation)."""
    kind = str(mount.get("Type") or "")
    source = str(mount.get("Source") or "")
    read_only = bool(mount.get("ReadOnly"))
    bind_opts, vol_opts = _opt(mount, "BindOptions"), _opt(mount, "VolumeOptions")
    destination = _check_target(kind, str(mount.get("Target") or ""))
    if kind == "bind":
        return _parse_bind_mount(source, destination, read_only, bind_opts, vol_opts, exists)
    if kind == "volume":
        return _parse_volume_mount(source, destination, read_only, bind_opts, vol_opts)
    if kind == "tmpfs":
        if bind_opts is not None:
            raise _config_error(kind, "field BindOptions must not be specified")
        if source:
            raise _config_error(kind, "field Source must not be specified")
        try:
            data = tmpfs_data(_opt(mount, "TmpfsOptions"), read_only)
        except InvalidArgument as err:
            raise _config_error(kind, str(err)) from None
        return MountSpec("tmpfs", destination, read_only=read_only, options=data,
                         origin="mounts")
    raise _config_error(kind, "mount type unknown")


def _parse_bind_mount(source: str, destination: str, read_only: bool,
                      bind_opts: Mapping[str, Any] | None, vol_opts: Mapping[str, Any] | None,
                      exists: Callable[[str], bool]) -> MountSpec:
    if not source:
        raise _config_error("bind", "field Source must not be empty")
    opts = bind_opts or {}
    propagation = str(opts.get("Propagation") or "")
    if propagation and propagation not in PROPAGATIONS:
        raise _config_error("bind", f"invalid propagation mode: {propagation}")
    if vol_opts is not None:
        raise _config_error("bind", "field VolumeOptions must not be specified")
    if not source.startswith("/"):
        raise _config_error("bind", f"invalid mount path: '{source}' mount path must be absolute")
    create = bool(opts.get("CreateMountpoint"))
    if not create and not exists(source):
        raise _config_error("bind", f"bind source path does not exist: {source}")
    return MountSpec("bind", destination, posixpath.normpath(source), read_only,
                     propagation or DEFAULT_PROPAGATION, create_source=create,
                     non_recursive=bool(opts.get("NonRecursive")), origin="mounts")


def _parse_volume_mount(source: str, destination: str, read_only: bool,
                        bind_opts: Mapping[str, Any] | None,
                        vol_opts: Mapping[str, Any] | None) -> MountSpec:
    if bind_opts is not None:
        raise _config_error("volume", "field BindOptions must not be specified")
    opts = vol_opts or {}
    subpath = str(opts.get("Subpath") or "")
    if subpath:
        if not source:
            raise _config_error("volume", "must not set Subpath when using anonymous volumes")
        clean = posixpath.normpath(subpath)
        if subpath.startswith("/") or clean == ".." or clean.startswith("../"):
            raise _config_error("volume", "subpath must be a relative path within the volume")
    if read_only and not source:
        raise _config_error("volume", "must not set ReadOnly mode when using anonymous volumes")
    _check_volume_name(source)
    driver_config = opts.get("DriverConfig") or {}
    return MountSpec(
        "volume", destination, read_only=read_only, volume_name=source, anonymous=not source,
        nocopy=bool(opts.get("NoCopy")), driver=str(driver_config.get("Name") or DEFAULT_DRIVER),
        mode="z", subpath=subpath, origin="mounts",
        volume_options=tuple(sorted((driver_config.get("Options") or {}).items())),
        volume_labels=tuple(sorted((opts.get("Labels") or {}).items())))


def validate_tmpfs_destination(destination: str) -> str:
    """``HostConfig.Tmpfs`` keys (moby's ValidateTmpfsMountDestination)."""
    if posixpath.normpath(destination.replace("\\", "/")) == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    if not destination.replace("\\", "/").startswith("/"):
        raise InvalidArgument(f"invalid mount path: '{destination}' mount path must be absolute")
    return posixpath.normpath(destination)


def parse_volumes_from(spec: str) -> tuple[str, bool]:
    """``other[:mode]`` → (container, read-write?) (moby's ParseVolumesFrom)."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    container, _, mode = spec.partition(":")
    if mode == "":
        return container, True
    words = mode.split(",")
    if not valid_mode(mode) or _propagation_of(mode) or "nocopy" in words:
        raise _mode_error(mode)
    return container, "ro" not in words


def inherit(mounts: Iterable[MountSpec], read_write: bool) -> list[MountSpec]:
    """Another container's mounts as ``--volumes-from`` copies them: everything but its
    ``HostConfig.Tmpfs``, read-only if asked, never copied-up again, Mode not copied."""
    return [replace(m, read_only=m.read_only or not read_write, mode="",
                    origin="volumes-from") for m in mounts if m.origin != "tmpfs"]


def _duplicate(destination: str) -> InvalidArgument:
    return InvalidArgument(f"Duplicate mount point: {destination}")


def container_mounts(
    host_config: Mapping[str, Any],
    image_volumes: Iterable[str] = (),
    volumes_from: Callable[[str], Sequence[MountSpec]] | None = None,
    exists: Callable[[str], bool] = os.path.exists,
) -> list[MountSpec]:
    """All of a container's mounts, validated. ``image_volumes`` are the keys of the merged
    ``Config.Volumes``; ``volumes_from`` resolves a container name or id to its stored mounts
    (raising the engine's own not-found error)."""
    tmpfs = {validate_tmpfs_destination(d): str(o or "")
             for d, o in (host_config.get("Tmpfs") or {}).items()}
    for mount in host_config.get("Mounts") or []:
        parse_mount(mount, exists)  # Docker validates every --mount before anything else
    taken: dict[str, MountSpec] = {}
    for spec in host_config.get("VolumesFrom") or []:
        container, read_write = parse_volumes_from(spec)
        if volumes_from is None:
            raise InvalidArgument(f"No such container: {container}")
        taken.update((m.destination, m) for m in inherit(volumes_from(container), read_write))
    explicit: set[str] = set()
    driver = str(host_config.get("VolumeDriver") or "")
    for raw in host_config.get("Binds") or []:
        spec = parse_bind(raw, driver)
        if spec.destination in explicit or spec.destination in tmpfs:
            raise _duplicate(spec.destination)
        explicit.add(spec.destination)
        taken[spec.destination] = spec
    for mount in host_config.get("Mounts") or []:
        spec = parse_mount(mount, exists)
        if spec.destination in explicit or spec.destination in tmpfs:
            raise _duplicate(str(mount.get("Target")))
        explicit.add(spec.destination)
        taken[spec.destination] = spec
    for destination, data in tmpfs.items():
        options = tuple(o for o in data.split(",") if o)
        taken[destination] = MountSpec("tmpfs", destination, options=options, origin="tmpfs")
    for path in image_volumes:
        destination = _image_volume_destination(path)
        if destination not in taken:
            taken[destination] = MountSpec("volume", destination, anonymous=True,
                                           driver=driver or DEFAULT_DRIVER, origin="image")
    return list(taken.values())


def _image_volume_destination(path: str) -> str:
    try:
        return _check_target("volume", path)
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid volume specification: '{path}': {err}") from None

