"""Route table: (method, path pattern) → handler, with the ``/vX.YY`` prefix stripped.

Handlers take ``(request, **path_params)`` and respond through the request object.
"""
from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from dockyard import errors
from dockyard.api import errors as api_errors
from dockyard.api.http import Request
from dockyard.api_version import API_VERSION, MIN_API_VERSION

_VERSION_RE = re.compile(r"^/v(\d+\.\d+)(/.*)$")
_PARAM_RE = re.compile(r"\{(\w+)\}")

log = logging.getLogger("dockyard.api")

RouteHandler = Callable[..., None]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: RouteHandler


def compile_path(path: str) -> re.Pattern[str]:
    """``/containers/{id}/json`` → a regex; ``{name*}`` would match slashes (image names)."""
    regex = ""
    pos = 0
    for match in _PARAM_RE.finditer(path):
        regex += re.escape(path[pos:match.start()])
        name = match.group(1)
        regex += f"(?P<{name}>.+)" if name in ("name", "path") else f"(?P<{name}>[^/]+)"
        pos = match.end()
    regex += re.escape(path[pos:])
    return re.compile(f"^{regex}$")


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: RouteHandler) -> None:
        self._routes.append(Route(method, compile_path(path), handler))

    def dispatch(self, request: Request) -> None:
        path = request.path
        version = API_VERSION
        match = _VERSION_RE.match(path)
        if match:
            version, path = match.group(1), match.group(2)
            if _vtuple(version) < _vtuple(MIN_API_VERSION):
                return self._fail(request, errors.InvalidArgument(
                    f"client version {version} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version"))
        request.api_version = version  # type: ignore[attr-defined]
        route, params, allowed = self._find(request.method, path)
        if route is None and request.method == "HEAD":
            route, params, allowed = self._find("GET", path)
        if route is not None:
            try:
                route.handler(request, **params)
            except errors.DockyardError as exc:
                self._fail(request, exc)
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
                log.error("internal error on %s %s\n%s", request.method, path,
                          traceback.format_exc())
                self._fail(request, exc)
            return None
        if allowed:
            return self._fail(request, errors.InvalidArgument("method not allowed"), 405)
        return self._fail(request, errors.NotFound("page not found"))

    def _find(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route for ``method`` and ``path``; ``allowed`` tells a 405 from a 404."""
        allowed = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), True
            allowed = True
        return None, {}, allowed

    @staticmethod
    def _fail(request: Request, exc: BaseException, status: int | None = None) -> None:
        if request.responded:
            return
        request.send(status or api_errors.status_of(exc), api_errors.body_of(exc))


def _vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))
