"""Pure functions turning a ``POST /containers/create`` body plus the image into a record.

Follows Docker's merge rules: the image supplies Cmd/Entrypoint/Env/WorkingDir/User/... where
the request leaves them empty; a request Entrypoint drops the image's Cmd.
"""
from __future__ import annotations

import copy
import os
import signal
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.image.model import DEFAULT_PATH, Image

RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")


def merge_config(request: dict[str, Any], image: Image) -> dict[str, Any]:
    """The effective container Config."""
    config = copy.deepcopy(request)
    image_cfg = image.run_config
    entrypoint = config.get("Entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if entrypoint is not None:  # the user set one; [] and [""] reset the image's
        config["Entrypoint"] = [part for part in entrypoint if part] or None
    if not config.get("Entrypoint"):
        if entrypoint is None:
            config["Entrypoint"] = image_cfg.get("Entrypoint")
        if not config.get("Cmd"):
            config["Cmd"] = image_cfg.get("Cmd")
    config["Env"] = merge_env(image_cfg.get("Env") or [], config.get("Env") or [])
    if not any(e.startswith("PATH=") for e in config["Env"]):
        config["Env"].insert(0, DEFAULT_PATH)
    for key in ("WorkingDir", "User", "StopSignal", "Healthcheck", "Shell", "OnBuild"):
        if not config.get(key) and image_cfg.get(key):
            config[key] = image_cfg[key]
    for key in ("ExposedPorts", "Volumes", "Labels"):
        merged = dict(image_cfg.get(key) or {})
        merged.update(config.get(key) or {})
        config[key] = merged or ({} if key == "Labels" else None)
    config.setdefault("Hostname", "")
    config.setdefault("Domainname", "")
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        config[key] = bool(config.get(key))
    return config


def merge_env(base: list[str], override: list[str]) -> list[str]:
    result: dict[str, str] = {}
    for item in [*base, *override]:
        key = item.split("=", 1)[0]
        result[key] = item
    return list(result.values())


def parse_link(link: str) -> tuple[str, str]:
    """``--link name[:alias]`` → (container name, alias); also the stored ``/db:/web/db``."""
    if not link:
        raise InvalidArgument("empty string specified for links")
    parts = link.split(":")
    if len(parts) > 2 or not parts[0].lstrip("/"):
        raise InvalidArgument(f"bad format for links: {link}")
    name = parts[0].lstrip("/")
    alias = parts[1].rsplit("/", 1)[-1] if len(parts) == 2 else ""
    return name, alias or name


def uses_legacy_links(host_config: dict[str, Any]) -> bool:
    """Links take effect (and are checked) on the default bridge, not on user networks."""
    mode = host_config.get("NetworkMode") or "default"
    return mode in ("default", "bridge", "none") or mode.startswith("container:")


def command_of(config: dict[str, Any]) -> tuple[str, list[str]]:
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        raise InvalidArgument("no command specified")
    return argv[0], argv[1:]


def normalise_host_config(host: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults Docker fills in, plus validation of what the engine relies on."""
    hc = copy.deepcopy(host or {})
    hc.setdefault("NetworkMode", "default")
    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name", "") or ""
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if retries and name != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used "
                              "with 'on-failure'")
    if retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if name in ("always", "unless-stopped") and hc.get("AutoRemove"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    hc["RestartPolicy"] = {"Name": name or "no", "MaximumRetryCount": retries}
    for key in ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod"):
        if int(hc.get(key) or 0) < 0 and not (key == "MemorySwap" and hc.get(key) == -1):
            raise InvalidArgument(f"invalid {key}: must be positive")
    memory = int(hc.get("Memory") or 0)
    if memory and memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if hc.get("NanoCpus") and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if hc.get("NanoCpus") and int(hc["NanoCpus"]) > (os.cpu_count() or 1) * 1_000_000_000:
        raise InvalidArgument(f"range of CPUs is from 0.01 to {os.cpu_count()}.00, as there "
                              f"are only {os.cpu_count()} CPUs available")
    hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    if not hc["LogConfig"].get("Type"):
        hc["LogConfig"]["Type"] = "json-file"
    if hc["LogConfig"]["Type"] not in ("json-file", "none", "local"):
        raise InvalidArgument(f'failed to create task for container: logger: no log driver '
                              f'named \'{hc["LogConfig"]["Type"]}\' is registered')
    hc["LogConfig"].setdefault("Config", {})
    return hc


def stop_signal_number(name: str | None) -> int:
    if not name:
        return int(signal.SIGTERM)
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {name}") from None


def log_options(host: dict[str, Any]) -> tuple[int, int]:
    """(max-size bytes, max-file) for json-file logs; rotated by default (20 MB × 5)."""
    opts = host.get("LogConfig", {}).get("Config") or {}
    size = parse_size(opts.get("max-size", "20m"))
    files = int(opts.get("max-file", "5") or 5)
    if files < 1:
        raise InvalidArgument("max-file cannot be less than 1")
    return size, files


def parse_size(text: str) -> int:
    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2,
             "g": 1024**3, "gb": 1024**3}
    value = str(text).strip().lower()
    number = value.rstrip("kmgb")
    unit = value[len(number):]
    try:
        return int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise InvalidArgument(f"invalid size: '{text}'") from None
