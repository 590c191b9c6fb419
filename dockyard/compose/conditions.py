"""Compose's wait conditions, judged on one inspected container (pure; no I/O).

``service_healthy`` (``depends_on``), ``service_completed_successfully`` and, for
``up --wait``, ``running_or_healthy``; the error texts are Compose v2's.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.compose import labels as L

HEALTHY, COMPLETED = "service_healthy", "service_completed_successfully"
RUNNING_OR_HEALTHY = "running_or_healthy"  # up --wait: healthy with a healthcheck, else running


class ComposeError(Exception):
    pass


class WaitTimeout(Exception):
    pass


def check_condition(info: Mapping[str, Any], condition: str) -> bool:
    """Whether the container (``GET /containers/{id}/json``) meets ``condition`` yet; raises
    :class:`ComposeError` with Compose's text when it never will. No ``State.Health`` on a
    container with a healthcheck means its first probe has not run yet ("starting")."""
    name = str(info.get("Name") or info.get("Id", "")).lstrip("/")
    state = info.get("State") or {}
    exited = state.get("Status") in ("exited", "dead")
    code = int(state.get("ExitCode") or 0)
    if condition == COMPLETED:
        if exited and code:
            service = ((info.get("Config") or {}).get("Labels") or {}).get(L.SERVICE, name)
            raise ComposeError(f"service \"{service}\" didn't complete successfully: "
                               f"exit {code}")
        return exited
    if exited:
        raise ComposeError(f"container {name} exited ({code})")
    test = ((info.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        if condition == RUNNING_OR_HEALTHY:
            return state.get("Status") == "running"
        raise ComposeError(f"container {name} has no healthcheck configured")
    status = (state.get("Health") or {}).get("Status") or "starting"
    if status == "unhealthy":
        raise ComposeError(f"container {name} is unhealthy")
    if status not in ("healthy", "starting"):
        raise ComposeError(f"container {name} had unexpected health status \"{status}\"")
    return status == "healthy"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text for whole seconds: 5s, 1m30s, 1h0m0s."""
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    return f"{m}m{sec}s" if m else f"{sec}s"
