"""Loading a compose project: files → YAML → interpolate → validate → include/extends →
merge → profiles → :func:`normalize`. Pure: the OS environment and the working directory
come in through :class:`ProjectOptions`; only the compose/env files are read."""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockyard.compose import yaml12
from dockyard.compose.envfile import project_environment, read_env_file
from dockyard.compose.interpolate import interpolate
from dockyard.compose.merge import merge_files, merge_service
from dockyard.compose.model import Project
from dockyard.compose.normalize import normalize
from dockyard.compose.validate import validate
from dockyard.errors import InvalidArgument, NotFound

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yml", "docker-compose.override.yaml")
RESOURCES = ("services", "networks", "volumes", "configs", "secrets")


@dataclass(frozen=True)
class ProjectOptions:
    files: tuple[str, ...] = ()           # -f, in order; empty → COMPOSE_FILE or defaults
    project_dir: str | None = None        # --project-directory
    project_name: str | None = None       # -p
    env_files: tuple[str, ...] = ()       # --env-file
    profiles: tuple[str, ...] = ()        # --profile
    os_env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = "."


def normalize_project_name(name: str) -> str:
    """Lower-case, keep ``[a-z0-9_-]``, and start with a letter or digit."""
    cleaned = re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")
    if not cleaned:
        raise InvalidArgument(f"invalid project name {name!r}: must contain a lower-case "
                              "letter or digit")
    return cleaned


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml12.load(text)
    except yaml.YAMLError as e:
        raise InvalidArgument(f"{source}: invalid YAML: {e}") from None
    if data is None:
        raise InvalidArgument(f"{source}: empty compose file")
    if not isinstance(data, dict):
        raise InvalidArgument(f"{source}: top-level object must be a mapping")
    return {str(k): v for k, v in data.items()}


def _abs(base: Path, p: str, env: Mapping[str, str]) -> str:
    if p.startswith("~"):
        home = env.get("HOME") or os.path.expanduser("~")
        p = home + p[1:]
    return os.path.normpath(os.path.join(base, p))


def _is_remote(ctx: str) -> bool:
    return bool(re.match(r"^(https?://|git@|git://|github\.com/|ssh://)", ctx))


def _resolve_volume(v: Any, base: Path, env: Mapping[str, str]) -> Any:
    if isinstance(v, dict):
        src = v.get("source")
        if v.get("type") == "bind" and isinstance(src, str) and not src.startswith("/"):
            return {**v, "source": _abs(base, src, env)}
        return v
    parts = str(v).split(":")
    if len(parts) > 1 and parts[0][:1] in (".", "~"):
        parts[0] = _abs(base, parts[0], env)
    return ":".join(parts)


def resolve_paths(doc: dict[str, Any], base: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Make build contexts, env_files, bind sources, extends files, label
    files and config/secret files absolute, relative to ``base`` (the directory the file's paths are relative to)."""
    services = {}
    for name, svc in (doc.get("services") or {}).items():
        svc = dict(svc or {})
        build = svc.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if isinstance(build, dict):
            ctx = str(build.get("context", "."))
            build = {**build, "context": ctx if _is_remote(ctx) else _abs(base, ctx, env)}
            svc["build"] = build
        env_file = svc.get("env_file")
        if env_file is not None:
            items = env_file if isinstance(env_file, list) else [env_file]
            svc["env_file"] = [
                {**e, "path": _abs(base, e["path"], env)} if isinstance(e, dict)
                else {"path": _abs(base, e, env), "required": True} for e in items]
        if "volumes" in svc:
            svc["volumes"] = [_resolve_volume(v, base, env) for v in svc["volumes"] or []]
        label_file = svc.get("label_file")
        if label_file is not None:
            svc["label_file"] = [_abs(base, f, env) for f in
                                 ([label_file] if isinstance(label_file, str) else label_file)]
        ext = svc.get("extends")
        if isinstance(ext, dict) and "file" in ext:
            svc["extends"] = {**ext, "file": _abs(base, ext["file"], env)}
        services[name] = svc
    out = dict(doc)
    if "services" in doc:
        out["services"] = services
    for section in ("configs", "secrets"):
        if isinstance(doc.get(section), dict):
            out[section] = {k: ({**v, "file": _abs(base, v["file"], env)}
                                if isinstance(v, dict) and "file" in v else v)
                            for k, v in doc[section].items()}
    return out


class _Loader:
    def __init__(self, os_env: Mapping[str, str], warn: Callable[[str], None]) -> None:
        self.os_env = os_env
        self.warn = warn
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    def read(self, path: Path, base: Path, env: Mapping[str, str]) -> dict[str, Any]:
        """One file, interpolated, validated, with its paths made absolute and its
        ``include``/``extends`` resolved."""
        key = (str(path), str(base))
        if key in self.cache:
            return self.cache[key]
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise NotFound(f"compose file {path} not found") from None
        source = path.name
        doc = parse_yaml(text, source)
        doc = interpolate(doc, env, source=source, warn=self.warn)
        validate(doc, source)
        if "version" in doc:  # Compose v2 (2.25 and later) says so, and goes on
            self.warn(f"{path}: the attribute `version` is obsolete, it will be ignored, "
                      "please remove it to avoid potential confusion")
        doc = resolve_paths(doc, base, env)
        doc = self.include(doc, base, env, source)
        doc["services"] = self.extends(doc.get("services") or {}, path, base, env)
        self.cache[key] = doc
        return doc

    def extends(self, services: dict[str, Any], path: Path, base: Path,
                env: Mapping[str, str]) -> dict[str, Any]:
        return {name: self._extend(name, services, path, env, ()) for name in services}

    def _extend(self, name: str, services: dict[str, Any], path: Path,
                env: Mapping[str, str], seen: tuple[str, ...]) -> dict[str, Any]:
        svc = dict(services[name] or {})
        ext = svc.pop("extends", None)
        if ext is None:
            return svc
        if isinstance(ext, str):
            ext = {"service": ext}
        marker = f"{path}:{name}"
        if marker in seen:
            chain = " -> ".join(s.rsplit(":", 1)[1] for s in seen + (marker,))
            raise InvalidArgument(f"{path.name}: services.{name}: circular extends: {chain}")
        if "file" in ext:
            other = Path(ext["file"])
            if not other.is_file():
                raise NotFound(f"{path.name}: services.{name}.extends: file {other} not found")
            text = other.read_text()
            doc = interpolate(parse_yaml(text, other.name), env, source=other.name,
                              warn=self.warn)
            validate(doc, other.name)
            doc = resolve_paths(doc, other.parent, env)
            base_services, base_path = doc.get("services") or {}, other
        else:
            base_services, base_path = services, path
        target = ext["service"]
        if target not in base_services:
            raise InvalidArgument(f"{path.name}: services.{name}.extends: cannot extend "
                                  f"service {target!r}: no such service in {base_path.name}")
        parent = self._extend(target, base_services, base_path, env, seen + (marker,))
        return merge_service(parent, svc)

    def include(self, doc: dict[str, Any], base: Path, env: Mapping[str, str],
                source: str) -> dict[str, Any]:
        items = doc.pop("include", None) or []
        for item in items:
            if isinstance(item, str):
                item = {"path": item}
            paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
            files = [Path(_abs(base, p, env)) for p in paths]
            proj = Path(_abs(base, item["project_directory"], env)) \
                if item.get("project_directory") else files[0].parent
            env_files = item.get("env_file")
            if isinstance(env_files, str):
                env_files = [env_files]
            sub_env = dict(env)
            for f in env_files or ([".env"] if (proj / ".env").is_file() else []):
                for k, v in read_env_file(Path(_abs(proj, f, env)), env).items():
                    sub_env.setdefault(k, v)
            sub = merge_files([self.read(f, proj, sub_env) for f in files])
            for section in RESOURCES:
                for key, value in (sub.get(section) or {}).items():
                    mine = doc.setdefault(section, {}) or {}
                    doc[section] = mine
                    if key in mine and mine[key] != value:
                        raise InvalidArgument(f"{source}: {section}.{key} conflicts with "
                                              f"imported resource from {files[0].name}")
                    mine[key] = value
        return doc


def _find_files(options: ProjectOptions, env: Mapping[str, str],
                project_dir: Path) -> list[Path]:
    cwd = Path(options.cwd)
    if options.files:
        return [Path(_abs(cwd, f, env)) for f in options.files]
    if env.get("COMPOSE_FILE"):
        sep = env.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        return [Path(_abs(project_dir, f, env)) for f in env["COMPOSE_FILE"].split(sep) if f]
    for name in DEFAULT_FILES:
        if (project_dir / name).is_file():
            found = [project_dir / name]
            found += [project_dir / o for o in OVERRIDE_FILES if (project_dir / o).is_file()][:1]
            return found
    raise NotFound(f"no configuration file provided: not found in {project_dir}")


def active_profiles(options: ProjectOptions, env: Mapping[str, str]) -> set[str]:
    enabled = set(options.profiles)
    if not enabled and env.get("COMPOSE_PROFILES"):
        enabled = {p.strip() for p in env["COMPOSE_PROFILES"].split(",") if p.strip()}
    return enabled


def load_project(options: ProjectOptions) -> Project:
    """Everything ``docker compose`` does before it talks to the engine."""
    cwd = Path(options.cwd).resolve()
    os_env = dict(options.os_env)
    if options.project_dir:
        project_dir = Path(_abs(cwd, options.project_dir, os_env))
    elif options.files:
        project_dir = Path(_abs(cwd, options.files[0], os_env)).parent
    else:
        project_dir = cwd
    env_files = tuple(Path(_abs(cwd, f, os_env)) for f in options.env_files)
    env = project_environment(project_dir, os_env, env_files)
    used_env_files = tuple(str(f) for f in env_files) or tuple(
        str(p) for p in (project_dir / ".env",) if p.is_file())
    files = _find_files(options, env, project_dir)
    if not options.project_dir and not options.files:
        project_dir = files[0].parent
    warnings: list[str] = []
    loader = _Loader(os_env, warnings.append)
    docs = [loader.read(f, project_dir, env) for f in files]
    merged = merge_files(docs)
    name = options.project_name or env.get("COMPOSE_PROJECT_NAME") or merged.get("name") \
        or project_dir.name
    name = normalize_project_name(str(name))
    return normalize(merged, name=name, working_dir=str(project_dir), env=env,
                     profiles=active_profiles(options, env), warnings=tuple(warnings),
                     env_files=used_env_files, blame=_blame(files, docs))


def _blame(files: list[Path], docs: list[dict[str, Any]]) -> Callable[[str | None, str | None],
                                                                      str]:
    """The file a normalisation problem is reported against: the last of the merged files
    that sets the service's key (or defines the service), else the first file."""
    def blame(service: str | None, key: str | None) -> str:
        for path, doc in reversed(list(zip(files, docs))):
            svc = (doc.get("services") or {}).get(service) if service else None
            if isinstance(svc, dict) and (key is None or key in svc):
                return path.name
        if key is not None:
            return blame(service, None)
        return files[0].name
    return blame


def load_text(text: str, project_dir: str = "/project", name: str | None = None,
              env: Mapping[str, str] | None = None,
              profiles: tuple[str, ...] = ()) -> Project:
    """One in-memory compose file (no include/extends ``file:``); for tests and tools."""
    env = dict(env or {})
    warnings: list[str] = []
    doc = interpolate(parse_yaml(text, "compose.yaml"), env, source="compose.yaml",
                      warn=warnings.append)
    validate(doc, "compose.yaml")
    doc = resolve_paths(doc, Path(project_dir), env)
    loader = _Loader(env, warnings.append)
    doc["services"] = loader.extends(doc.get("services") or {}, Path(project_dir) /
                                     "compose.yaml", Path(project_dir), env)
    pname = normalize_project_name(name or str(doc.get("name") or Path(project_dir).name))
    return normalize(doc, name=pname, working_dir=project_dir, env=env,
                     profiles=set(profiles), warnings=tuple(warnings))
