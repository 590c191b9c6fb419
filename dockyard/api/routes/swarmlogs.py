"""``/services/{id}/logs`` and ``/tasks/{id}/logs``: not supported yet. The swarm state is
checked first as moby does (503 off a manager, 404 for an unknown service or task), then the
call is refused with a clear 501 rather than a bare 404 "page not found"."""
from __future__ import annotations

from dockyard.api.http import Request
from dockyard.api.router import Router
from dockyard.errors import NotImplementedYet
from dockyard.types.swarm import SERVICES, TASKS, SwarmBackend


def register(router: Router, swarm: SwarmBackend) -> None:
    def service_logs(req: Request, id: str) -> None:
        swarm.lookup(SERVICES, id)
        raise NotImplementedYet("service logs are not supported yet: read a task's logs with "
                                "docker logs <task container> on the node running it")

    def task_logs(req: Request, id: str) -> None:
        swarm.lookup(TASKS, id)
        raise NotImplementedYet("task logs are not supported yet: read them with docker logs "
                                "<task container> on the node running the task")

    router.add("GET", "/services/{id}/logs", service_logs)
    router.add("GET", "/tasks/{id}/logs", task_logs)
