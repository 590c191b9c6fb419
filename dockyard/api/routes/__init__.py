"""Every route group, registered on one router."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.api.router import Router

if TYPE_CHECKING:
    from dockyard.daemon.wiring import Daemon


def register_all(router: Router, daemon: "Daemon") -> None:
    from dockyard.api.routes import (build, containers, execs, files, images, networks, system,
                                     volumes)
    system.register(router, daemon)
    containers.register(router, daemon.engine)
    execs.register(router, daemon.engine)
    images.register(router, daemon.engine)
    files.register(router, daemon.engine)
    build.register(router, daemon.engine)
    volumes.register(router, daemon.engine)
    networks.register(router, daemon.engine, daemon.swarm)
    from dockyard.api.routes import distribution, resources, swarmroutes
    distribution.register(router, daemon.engine)
    resources.register(router, daemon.engine)
    swarmroutes.register(router, daemon.swarm, daemon.engine.networks.manager.get)
    from dockyard.api.routes import swarmsecrets
    swarmsecrets.register(router, daemon.swarm)
    from dockyard.api.routes import swarmlogs
    swarmlogs.register(router, daemon.swarm)
