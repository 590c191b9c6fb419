"""``POST /build`` (the classic builder protocol the docker CLI uses without buildx) and
``POST /build/prune``."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dockyard.api.http import Request
from dockyard.api.progress import stream_json
from dockyard.api.router import Router
from dockyard.builder.options import BuildOptions
from dockyard.engine import build as engine_build
from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine


def _json_arg(req: Request, name: str) -> dict[str, Any]:
    text = req.arg(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"invalid {name}: {text}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name}: {text}")
    return value


def options_from(req: Request) -> BuildOptions:
    return BuildOptions(
        tags=tuple(req.args("t")), dockerfile=req.arg("dockerfile") or "Dockerfile",
        build_args={k: v for k, v in _json_arg(req, "buildargs").items()},
        no_cache=req.flag("nocache"), rm=req.flag("rm", True), force_rm=req.flag("forcerm"),
        quiet=req.flag("q"), target=req.arg("target"), labels=_json_arg(req, "labels"),
        network=req.arg("networkmode") or "default", memory=req.int_arg("memory"),
        memory_swap=req.int_arg("memswap"), cpu_shares=req.int_arg("cpushares"),
        pull=req.flag("pull"), explain_cache=req.flag("explaincache"),
        extra_hosts=tuple(h for h in req.arg("extrahosts").split(",") if h))


def register(router: Router, engine: "Engine") -> None:
    def build(req: Request) -> None:
        opts = options_from(req)
        registry_config = req.headers.get("X-Registry-Config") or ""
        stream_json(req, lambda emit: engine_build.run(engine, opts, req.body, emit,
                                                       registry_config))

    def prune(req: Request) -> None:
        removed = engine.build_cache.size()
        engine.build_cache.clear()
        req.send_json({"CachesDeleted": None, "SpaceReclaimed": 0, "EntriesDeleted": removed})

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)
