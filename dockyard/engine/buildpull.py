"""The images a build starts from: local ones, or pulled as ``docker pull`` pulls them.

The classic builder pulls a FROM (or ``COPY --from``) image that is missing locally, and with
``--pull`` pulls every one of them again. The pull goes through
:meth:`dockyard.engine.registry.Registries.pull` (the code behind ``POST /images/create``),
with the credentials the CLI sent for that registry in ``X-Registry-Config``; its progress
messages join the build's output. A daemon running with ``--offline`` can only reach
registries on this machine: ``--pull`` of a local image then says so and uses the local
image, and a missing image fails with a clear error.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.engine.registry import Registries
from dockyard.errors import InvalidArgument, NotFound, Unavailable
from dockyard.image.model import Image
from dockyard.types import reference

Emit = Callable[[dict[str, Any]], None]
_ID = re.compile(r"(sha256:)?[0-9a-f]{12,64}")
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io",
                    "registry-1.docker.io", "https://registry-1.docker.io")


@dataclass(frozen=True)
class BuildPuller:
    registries: Registries
    always: bool = False                    # docker build --pull
    registry_config: str = ""               # the X-Registry-Config header
    emit: Emit = field(default=lambda message: None)

    def resolve(self, name: str) -> Image:
        store = self.registries.store
        local = store.find(name)
        if local is not None and (not self.always or _is_id(name, local)):
            return local
        try:
            ref = reference.parse(name)
        except InvalidArgument:
            if local is not None:
                return local
            raise
        try:
            self.registries.pull(str(ref), "", auth_header(self.registry_config, ref.domain),
                                 self.emit)
        except Unavailable as exc:
            if not self.registries.offline:
                raise
            if local is not None:
                self.emit({"stream": f"--pull: {exc.message}; using the local image "
                                     f"{ref.familiar()}\n"})
                return local
            raise Unavailable(f"Unable to find image '{ref.familiar()}' locally, and "
                              f"{exc.message}") from None
        image = store.find(str(ref))
        if image is None:
            raise NotFound(f"No such image: {ref.familiar()}")
        return image


def _is_id(name: str, image: Image) -> bool:
    """``FROM <id>``: an image id (prefix) is never pulled."""
    return bool(_ID.fullmatch(name)) and image.id.split(":", 1)[-1].startswith(
        name.split(":", 1)[-1])


def auth_header(registry_config: str, domain: str) -> str:
    """The ``X-Registry-Auth`` value for ``domain`` out of ``X-Registry-Config`` (a base64
    JSON map of registry → credentials, as ``docker build`` sends it); "" for anonymous."""
    if not registry_config.strip():
        return ""
    try:
        padded = registry_config.strip() + "=" * (-len(registry_config.strip()) % 4)
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
        config = json.loads(raw or b"{}")
    except (binascii.Error, ValueError):
        return ""
    if not isinstance(config, dict):
        return ""
    keys = _DOCKER_HUB_KEYS if domain == "docker.io" else (
        domain, f"https://{domain}", f"http://{domain}", f"https://{domain}/v1/")
    for key in keys:
        entry = config.get(key)
        if isinstance(entry, dict) and entry:
            return base64.urlsafe_b64encode(json.dumps(entry).encode()).decode()
    return ""
