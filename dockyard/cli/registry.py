"""``pull``, ``push``, ``login``, ``logout``: the client side of the registry API."""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any
from urllib.parse import quote

from dockyard.cli import auth
from dockyard.cli.command import Command, FlagParser, StatusError
from dockyard.cli.context import Context
from dockyard.cli.progress import StreamError, render_stream
from dockyard.cli.refs import (
    INDEX_SERVER,
    normalize_name,
    registry_host,
    split_reference,
)
from dockyard.client.errors import APIError


def unsupported(exc: APIError) -> bool:
    """The daemon has no such route (yet), as opposed to a registry-side 404."""
    msg = exc.message.lower()
    return exc.status == 501 or exc.status == 405 or (
        exc.status == 404 and ("page not found" in msg or "not implemented" in msg))


def api_failure(exc: APIError, what: str) -> StatusError:
    lowered = exc.message.lower()
    if unsupported(exc) and "not supported" not in lowered and "not implemented" not in lowered:
        return StatusError(f"Error response from daemon: {exc.message} "
                           f"({what} is not supported by this daemon yet)")
    return StatusError(f"Error response from daemon: {exc.message}")


def progress(ctx: Context, messages: Any, out: Any = None) -> None:
    """Render a JSON progress stream; an in-stream error becomes exit status 1."""
    target = out or ctx.stdout
    try:
        render_stream(messages, target, _isatty(target))
    except StreamError as exc:
        raise StatusError(str(exc)) from None


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Discard:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def pull_image(ctx: Context, image: str, out: Any = None, quiet: bool = False,
               platform: str = "", all_tags: bool = False) -> str:
    """``POST /images/create?fromImage=…&tag=…``; returns the full reference pulled."""
    name, tag, digest = split_reference(image)
    full = normalize_name(name)
    if not tag and not digest and not all_tags:
        tag = "latest"
    query = {"fromImage": full, "tag": digest or tag or None, "platform": platform or None}
    creds = auth.credentials(ctx.config_path, registry_host(image))
    headers = {"X-Registry-Auth": auth.encode_header(creds)}
    try:
        with ctx.client.stream("POST", "/images/create", query, headers=headers) as resp:
            progress(ctx, resp.iter_json(), _Discard() if quiet else out)
    except APIError as exc:
        raise api_failure(exc, "pulling images") from None
    return f"{full}@{digest}" if digest else f"{full}:{tag}" if tag else full


def _pull_build(p: FlagParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="Download all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image verification (default true)")


def _pull(ctx: Context, ns: argparse.Namespace) -> int:
    image = ns.args[0]
    _, tag, digest = split_reference(image)
    if ns.all_tags and (tag or digest):
        raise StatusError("tag can't be used with --all-tags/-a")
    if not tag and not digest and not ns.all_tags and not ns.quiet:
        ctx.out("Using default tag: latest")
    ref = pull_image(ctx, image, quiet=ns.quiet, platform=ns.platform, all_tags=ns.all_tags)
    ctx.out(ref)
    return 0


def _push_build(p: FlagParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="Push all tags of an image to the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", default="", help="Push a platform-specific manifest")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image signing (default true)")


def _push(ctx: Context, ns: argparse.Namespace) -> int:
    image = ns.args[0]
    name, tag, _ = split_reference(image)
    if ns.all_tags and tag:
        raise StatusError("tag can't be used with --all-tags/-a")
    if not tag and not ns.all_tags:
        tag = "latest"
        if not ns.quiet:
            ctx.out("Using default tag: latest")
    creds = auth.credentials(ctx.config_path, registry_host(image))
    headers = {"X-Registry-Auth": auth.encode_header(creds)}
    query = {"tag": tag or None, "platform": ns.platform or None}
    path = f"/images/{quote(normalize_name(name), safe='/:')}/push"
    try:
        with ctx.client.stream("POST", path, query, headers=headers) as resp:
            progress(ctx, resp.iter_json(), _Discard() if ns.quiet else None)
    except APIError as exc:
        raise api_failure(exc, "pushing images") from None
    if ns.quiet:
        ctx.out(f"{normalize_name(name)}:{tag}" if tag else normalize_name(name))
    return 0


def _login_build(p: FlagParser) -> None:
    p.add_argument("-u", "--username", default="", help="Username")
    p.add_argument("-p", "--password", default="", help="Password or Personal Access Token (PAT)")
    p.add_argument("--password-stdin", action="store_true",
                   help="Take the Password or Personal Access Token (PAT) from stdin")


def _read_secret(ctx: Context, ns: argparse.Namespace) -> tuple[str, str]:
    username, password = ns.username, ns.password
    if ns.password:
        ctx.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if ns.password_stdin:
        if ns.password:
            raise StatusError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise StatusError("Must provide --username with --password-stdin")
        password = ctx.stdin.read().rstrip("\r\n")
    if not username:
        if not ctx.stdin_is_tty():
            raise StatusError("Error: Cannot perform an interactive login from a non TTY device")
        ctx.stdout.write("Username: ")
        ctx.stdout.flush()
        username = ctx.stdin.readline().strip()
    if not password:
        if not ctx.stdin_is_tty():
            raise StatusError("Error: Cannot perform an interactive login from a non TTY device")
        password = getpass.getpass("Password: ", stream=sys.stderr)
    if not username:
        raise StatusError("Error: Non-null Username Required")
    if not password:
        raise StatusError("Error: Password Required")
    return username, password


def _login(ctx: Context, ns: argparse.Namespace) -> int:
    server = auth.normalize_server(ns.args[0]) if ns.args else INDEX_SERVER
    username, password = _read_secret(ctx, ns)
    body = {"username": username, "password": password, "serveraddress": server}
    try:
        resp = ctx.client.post("/auth", json_body=body) or {}
    except APIError as exc:
        raise api_failure(exc, "registry login") from None
    token = resp.get("IdentityToken", "")
    auth.store(ctx.config_path, server, username, "" if token else password, token)
    ctx.err(f"\nWARNING! Your credentials are stored unencrypted in '{ctx.config_path}'.\n"
            "Configure a credential helper to remove this warning. See\n"
            "https://docs.docker.com/go/credential-store/\n")
    ctx.out(resp.get("Status") or "Login Succeeded")
    return 0


def _logout(ctx: Context, ns: argparse.Namespace) -> int:
    server = auth.normalize_server(ns.args[0]) if ns.args else INDEX_SERVER
    if not auth.erase(ctx.config_path, server):
        ctx.out(f"Not logged in to {server}")
        return 0
    ctx.out(f"Removing login credentials for {server}")
    return 0


PULL = Command("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
               _pull_build, _pull, (1, 1))
PUSH = Command("push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
               _push_build, _push, (1, 1))
LOGIN = Command("login", "[OPTIONS] [SERVER]", "Authenticate to a registry",
                _login_build, _login, (0, 1))
LOGOUT = Command("logout", "[SERVER]", "Log out from a registry", lambda p: None, _logout, (0, 1))
COMMANDS = [PULL, PUSH, LOGIN, LOGOUT]
