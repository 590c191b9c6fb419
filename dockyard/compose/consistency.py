"""Checks of a normalised service that Compose makes after loading (consistency), and how
a problem found while normalising names the file it comes from."""
from __future__ import annotations

import re
from collections.abc import Callable

from dockyard.compose.model import Service
from dockyard.errors import InvalidArgument


class ServiceProblem(Exception):
    """A problem of one service's ``key``, before the file to blame is known."""

    def __init__(self, error: InvalidArgument, service: str, key: str) -> None:
        super().__init__(str(error))
        self.error, self.service, self.key = error, service, key


# (service, key) → the name of the file to blame for a problem there (both None: the project)
Blame = Callable[[str | None, str | None], str]


def blamed(blame: Blame, exc: InvalidArgument, service: str | None = None,
           key: str | None = None) -> InvalidArgument:
    """``exc`` with the file named first, as schema errors are (``compose.yaml: services…``);
    the key is read from the message's ``services.<name>.<key>`` prefix when not given."""
    msg = str(exc)
    prefix = f"services.{service}."
    if key is None and service is not None and msg.startswith(prefix):
        key = re.split(r"[.:\s]", msg[len(prefix):], maxsplit=1)[0] or None
    return type(exc)(f"{blame(service, key)}: {msg}")


def check_service(svc: Service) -> None:
    if svc.image is None and svc.build is None:
        raise ServiceProblem(InvalidArgument(
            f"service {svc.name!r} has neither an image nor a build context specified: "
            "invalid compose project"), svc.name, "image")
    replicas = svc.deploy.replicas if svc.deploy else None
    scale = svc.scale if svc.scale is not None else replicas
    attr = "scale" if svc.scale is not None else "deploy.replicas"
    try:
        check_unique_name(svc, scale or 1, attr)
    except InvalidArgument as exc:
        raise ServiceProblem(exc, svc.name, attr.split(".")[0]) from None
    if svc.pull_policy == "build" and svc.build is None:
        raise ServiceProblem(InvalidArgument(
            f"services.{svc.name}.pull_policy: pull_policy is 'build' but the service has "
            "no build section: invalid compose project"), svc.name, "pull_policy")


def check_unique_name(svc: Service, scale: int, attr: str = "scale") -> None:
    """Compose v2 refuses a fixed ``container_name`` for more than one container."""
    if svc.container_name and scale > 1:
        raise InvalidArgument(f"services.{attr}: can't set container_name and {svc.name} as "
                              "container name must be unique: invalid compose project")
