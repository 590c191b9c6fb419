"""Registry credentials in ``~/.docker/config.json`` (``auths``), as the docker CLI keeps them."""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from dockyard.cli.refs import INDEX_SERVER


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_config(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent="\t")
        fh.write("\n")
    os.replace(tmp, path)


def normalize_server(server: str) -> str:
    """``docker.io``/``index.docker.io`` and friends → the legacy index key."""
    host = server.split("://", 1)[-1].rstrip("/")
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io") or \
            host.startswith("index.docker.io/"):
        return INDEX_SERVER
    return host


def credentials(path: Path, server: str) -> dict[str, str]:
    """The stored AuthConfig for ``server`` (empty if none)."""
    auths = load_config(path).get("auths") or {}
    key = normalize_server(server)
    entry = auths.get(key)
    if entry is None:
        for name, value in auths.items():
            if normalize_server(name) == key:
                entry = value
                break
    if not entry:
        return {}
    out: dict[str, str] = {"serveraddress": key}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        out.update(username=user, password=password)
    if entry.get("identitytoken"):
        out["identitytoken"] = entry["identitytoken"]
    return out


def store(path: Path, server: str, username: str, password: str, token: str = "") -> None:
    config = load_config(path)
    entry: dict[str, str] = {}
    if token:
        entry["identitytoken"] = token
    else:
        entry["auth"] = base64.b64encode(f"{username}:{password}".encode()).decode()
    config.setdefault("auths", {})[normalize_server(server)] = entry
    save_config(path, config)


def erase(path: Path, server: str) -> bool:
    config = load_config(path)
    auths = config.get("auths") or {}
    key = normalize_server(server)
    found = [name for name in auths if normalize_server(name) == key]
    for name in found:
        del auths[name]
    if found:
        save_config(path, config)
    return bool(found)


def encode_header(auth: dict[str, str]) -> str:
    """``X-Registry-Auth``: base64url of the AuthConfig JSON."""
    return base64.urlsafe_b64encode(json.dumps(auth or {}).encode()).decode()
