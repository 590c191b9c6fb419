"""The options of one build, as ``POST /build`` and ``dockyard build`` give them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.builder.executor import Removal


@dataclass(frozen=True)
class BuildOptions:
    tags: tuple[str, ...] = ()
    dockerfile: str = "Dockerfile"
    build_args: dict[str, Any] = field(default_factory=dict)
    no_cache: bool = False
    rm: bool = True
    force_rm: bool = False
    quiet: bool = False
    target: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    pull: bool = False
    explain_cache: bool = False
    extra_hosts: tuple[str, ...] = ()

    @property
    def removal(self) -> Removal:
        return Removal(self.rm, self.force_rm)
