"""Parsers for the structured values of ``run`` flags: ports, mounts, devices, ulimits…"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.cli.units import ram_in_bytes
from dockyard.errors import InvalidArgument
from dockyard.network import ports


class OptionError(ValueError):
    """A flag value the docker CLI would reject before talking to the daemon."""


def _split_proto(spec: str) -> tuple[str, str]:
    port, _, proto = spec.partition("/")
    return port, (proto or "tcp").lower()


def _port_range(text: str, what: str) -> tuple[int, int]:
    m = re.match(r"^(\d+)(?:-(\d+))?$", text)
    if not m:
        raise OptionError(f"invalid {what}: {text}")
    start = int(m.group(1))
    end = int(m.group(2) or start)
    if end < start:
        raise OptionError(f"invalid range specified for port: {text}")
    return start, end


def parse_ports(specs: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    """nat.ParsePortSpecs: ExposedPorts and PortBindings (the daemon's own parser)."""
    try:
        parsed = ports.parse_port_specs(specs)
    except InvalidArgument as exc:
        raise OptionError(exc.message) from None
    return parsed.exposed, parsed.bindings


def parse_expose(specs: list[str], exposed: dict[str, dict[str, Any]]) -> None:
    for spec in specs:
        if ":" in spec:
            raise OptionError(f"invalid port format for --expose: {spec}")
        port, proto = _split_proto(spec)
        start, end = _port_range(port, "range format for --expose")
        for p in range(start, end + 1):
            exposed.setdefault(f"{p}/{proto}", {})


def split_volumes(specs: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """``-v``: ``src:dst[:mode]`` are binds, a lone ``dst`` is an anonymous volume."""
    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if not spec:
            raise OptionError("invalid empty volume spec")
        if ":" in spec:
            binds.append(spec)
        else:
            volumes[spec] = {}
    return binds, volumes


def _csv(spec: str) -> list[str]:
    import csv
    return next(csv.reader([spec]))


_BOOL = {"true": True, "1": True, "false": False, "0": False}


def _bool(key: str, value: str) -> bool:
    if value == "":
        return True
    if value.lower() not in _BOOL:
        raise OptionError(f"invalid value for {key}: {value}")
    return _BOOL[value.lower()]


def parse_mount(spec: str) -> dict[str, Any]:
    """``--mount type=bind,source=…,target=…`` → an API Mount."""
    mount: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    vol: dict[str, Any] = {}
    tmpfs: dict[str, Any] = {}
    for field in _csv(spec):
        key, _, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "destination", "dst"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = _bool(key, value)
        elif key == "consistency":
            mount["Consistency"] = value
        elif key == "bind-propagation":
            bind["Propagation"] = value
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = _bool(key, value)
        elif key == "bind-recursive":
            bind["ReadOnlyNonRecursive" if value == "readonly" else "NonRecursive"] = \
                value == "readonly" or value == "disabled"
        elif key == "volume-nocopy":
            vol["NoCopy"] = _bool(key, value)
        elif key == "volume-subpath":
            vol["Subpath"] = value
        elif key == "volume-label":
            k, _, v = value.partition("=")
            vol.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            vol.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            vol.setdefault("DriverConfig", {}).setdefault("Options", {})[k] = v
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            tmpfs["Mode"] = int(value, 8)
        else:
            raise OptionError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise OptionError("target is required")
    for key, opts in (("BindOptions", bind), ("VolumeOptions", vol), ("TmpfsOptions", tmpfs)):
        if opts:
            mount[key] = opts
    return mount


def parse_tmpfs(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        path, _, opts = spec.partition(":")
        out[path] = opts
    return out


def parse_device(spec: str) -> dict[str, str]:
    parts = spec.split(":")
    host = parts[0]
    target, perms = host, "rwm"
    if len(parts) == 2:
        if re.match(r"^[rwm]+$", parts[1]):
            perms = parts[1]
        else:
            target = parts[1]
    elif len(parts) == 3:
        target, perms = parts[1], parts[2]
    elif len(parts) > 3:
        raise OptionError(f"invalid device specification: {spec}")
    return {"PathOnHost": host, "PathInContainer": target, "CgroupPermissions": perms}


def parse_ulimit(spec: str) -> dict[str, Any]:
    name, sep, limits = spec.partition("=")
    if not sep:
        raise OptionError(f"invalid ulimit argument: {spec}")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise OptionError(f"invalid ulimit argument: {spec}") from None


def parse_restart(policy: str) -> dict[str, Any]:
    name, sep, count = policy.partition(":")
    if sep and not name:
        raise OptionError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise OptionError("invalid restart policy format: maximum retry count must be "
                              "an integer") from None
    return {"Name": name, "MaximumRetryCount": retries}


def kv_map(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def env_value(item: str, environ: Mapping[str, str]) -> str:
    """opts.ValidateEnv: ``KEY`` alone takes the local value when set."""
    key, sep, _ = item.partition("=")
    if not key:
        raise OptionError(f"invalid environment variable: {item}")
    if sep:
        return item
    return f"{key}={environ[key]}" if key in environ else item


def read_kv_file(text: str, environ: Mapping[str, str] | None) -> list[str]:
    """Lines of an --env-file/--label-file; comments and blanks skipped."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if environ is not None:
            key, sep, _ = line.partition("=")
            if not sep:
                if key in environ:
                    out.append(f"{key}={environ[key]}")
                continue
        out.append(line)
    return out


def parse_security_opts(opts: list[str], read_text: Callable[[str], str]) -> list[str]:
    out: list[str] = []
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if (not sep or not value) and key != "no-new-privileges":
            raise OptionError(f'Invalid --security-opt: "{opt}"')
        if key == "seccomp" and value not in ("builtin", "unconfined"):
            try:
                profile = json.loads(read_text(value))
            except OSError as exc:
                raise OptionError(f"opening seccomp profile ({value}) failed: {exc}") from None
            except ValueError as exc:
                raise OptionError(f"compacting json for seccomp profile ({value}) failed: "
                                  f"{exc}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(opt)
    return out
