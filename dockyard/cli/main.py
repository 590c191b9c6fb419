"""The ``dockyard`` command: ``dockyard daemon`` runs the engine; everything else is the
docker-compatible client."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "daemon":
        from dockyard.daemon.main import main as daemon_main
        return daemon_main(args[1:])
    if args[:2] in (["registry", "serve"], ["registry", "gc"]):
        from dockyard.registry.main import main as registry_main
        return registry_main(args[1:])
    from dockyard.cli.app import run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
