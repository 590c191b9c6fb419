"""`dockyard registry serve|gc` — also runnable as `python -m dockyard.registry.main`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dockyard.registry.gc import DEFAULT_GRACE, collect
from dockyard.registry.server import ServerConfig, build_server, parse_listen
from dockyard.registry.storage import RegistryStorage
from dockyard.registry.token import DEFAULT_TTL


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyard registry", description="an OCI registry")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the distribution API")
    serve.add_argument("--listen", default="127.0.0.1:5000", help="HOST:PORT")
    serve.add_argument("--storage", required=True, type=Path)
    serve.add_argument("--htpasswd", type=Path)
    serve.add_argument("--tls-cert", type=Path)
    serve.add_argument("--tls-key", type=Path)
    serve.add_argument("--read-only", action="store_true")
    serve.add_argument("--verbose", action="store_true")
    serve.add_argument("--auth", choices=("basic", "token"), default="",
                       help="basic: htpasswd on every request (the default with --htpasswd); "
                            "token: Bearer tokens from GET /token, users from --htpasswd")
    serve.add_argument("--token-secret", type=Path,
                       help="HMAC key file for tokens (default: generated in --storage)")
    serve.add_argument("--anonymous-pull", action="store_true",
                       help="with --auth token: give anonymous callers pull tokens")
    serve.add_argument("--token-ttl", type=int, default=DEFAULT_TTL, help="token lifetime (s)")
    serve.add_argument("--token-realm", default="",
                       help="realm URL in challenges (default: from the Host header)")
    gc = sub.add_parser("gc", help="delete blobs no manifest references")
    gc.add_argument("--storage", required=True, type=Path)
    gc.add_argument("--grace", type=float, default=DEFAULT_GRACE,
                    help="keep unreferenced blobs younger than this many seconds")
    gc.add_argument("--dry-run", action="store_true")
    return p


def _serve(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("dockyard registry: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.auth == "basic" and not args.htpasswd:
        print("dockyard registry: --auth basic needs --htpasswd", file=sys.stderr)
        return 2
    if args.auth != "token" and (args.token_secret or args.anonymous_pull):
        print("dockyard registry: --token-secret/--anonymous-pull need --auth token",
              file=sys.stderr)
        return 2
    server = build_server(ServerConfig(host, port, args.storage, args.htpasswd, args.tls_cert,
                                       args.tls_key, args.read_only, args.verbose, args.auth,
                                       args.token_secret, args.anonymous_pull, args.token_ttl,
                                       args.token_realm))
    print(f"dockyard registry listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _gc(args: argparse.Namespace) -> int:
    report = collect(RegistryStorage(args.storage), args.grace, args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for digest in report.deleted:
        print(f"{verb} {digest}")
    print(f"marked {len(report.marked)}, {verb} {len(report.deleted)} blobs, "
          f"kept {len(report.kept_young)} young, removed {len(report.uploads_removed)} uploads")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _serve(args) if args.command == "serve" else _gc(args)
    except (OSError, ValueError) as e:
        print(f"dockyard registry: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
