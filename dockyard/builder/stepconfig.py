"""How each metadata instruction changes the image config, and the history text it leaves.

Pure functions over the run config (Docker's ``Config``): ENV, LABEL, CMD, ENTRYPOINT,
WORKDIR, USER, EXPOSE, VOLUME, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER.
``created_by`` strings follow the classic builder (``/bin/sh -c #(nop)  CMD ["sh"]``).
"""
from __future__ import annotations

import copy
import json
import posixpath
from collections.abc import Callable
from typing import Any

from dockyard.builder import commands as c
from dockyard.errors import InvalidArgument

NOP = "/bin/sh -c #(nop) "
Expand = Callable[[str], str]
ExpandWords = Callable[[str], list[str]]


def env_dict(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = [e for e in config.get("Env") or [] if e.partition("=")[0] != key]
    env.append(f"{key}={value}")
    config["Env"] = env


def _command(inst: c._Command, shell: list[str]) -> list[str]:
    if inst.prepend_shell:
        return [*shell, " ".join(inst.command)] if inst.command else []
    return list(inst.command)


def apply(inst: c.Instruction, config: dict[str, Any], expand: Expand,
          expand_words: ExpandWords, inherited_cmd: bool) -> tuple[dict[str, Any], str]:
    """The config after ``inst`` and its history text. ``inherited_cmd``: CMD still comes
    from the base image (ENTRYPOINT then resets it, as Docker does)."""
    cfg = copy.deepcopy(config)
    shell = list(cfg.get("Shell") or ["/bin/sh", "-c"])
    if isinstance(inst, c.Env):
        shown = []
        for key, raw in inst.pairs:
            if not key:
                raise InvalidArgument("ENV names can not be blank")
            value = expand(raw)
            set_env(cfg, key, value)
            shown.append(f"{key}={value}")
        return cfg, f"{NOP} ENV {' '.join(shown)}"
    if isinstance(inst, c.Label):
        labels = dict(cfg.get("Labels") or {})
        shown = []
        for key, raw in inst.pairs:
            labels[expand(key)] = expand(raw)
            shown.append(f"{expand(key)}={expand(raw)}")
        cfg["Labels"] = labels
        return cfg, f"{NOP} LABEL {' '.join(shown)}"
    if isinstance(inst, c.Cmd):
        cfg["Cmd"] = _command(inst, shell) or None
        return cfg, f"{NOP} CMD {json.dumps(cfg['Cmd'] or [])}"
    if isinstance(inst, c.Entrypoint):
        cfg["Entrypoint"] = _command(inst, shell) or None
        if inherited_cmd:
            cfg["Cmd"] = None
        return cfg, f"{NOP} ENTRYPOINT {json.dumps(cfg['Entrypoint'] or [])}"
    if isinstance(inst, c.Workdir):
        path = expand(inst.path)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", path))
        return cfg, f"{NOP}WORKDIR {cfg['WorkingDir']}"
    if isinstance(inst, c.User):
        cfg["User"] = expand(inst.user)
        return cfg, f"{NOP} USER {cfg['User']}"
    if isinstance(inst, c.Expose):
        ports = dict(cfg.get("ExposedPorts") or {})
        shown = []
        for raw in inst.ports:
            for port in expand_words(raw):
                key = port if "/" in port else f"{port}/tcp"
                ports[key] = {}
                shown.append(key)
        cfg["ExposedPorts"] = ports
        return cfg, f"{NOP} EXPOSE {' '.join(shown)}"
    if isinstance(inst, c.Volume):
        volumes = dict(cfg.get("Volumes") or {})
        paths = [expand(p) for p in inst.paths]
        for path in paths:
            if not path.strip():
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes[path] = {}
        cfg["Volumes"] = volumes
        return cfg, f"{NOP} VOLUME {json.dumps(paths)}"
    if isinstance(inst, c.Shell):
        cfg["Shell"] = list(inst.shell)
        return cfg, f"{NOP} SHELL {json.dumps(cfg['Shell'])}"
    if isinstance(inst, c.StopSignal):
        cfg["StopSignal"] = expand(inst.signal)
        return cfg, f"{NOP} STOPSIGNAL {cfg['StopSignal']}"
    if isinstance(inst, c.Healthcheck):
        return _healthcheck(cfg, inst)
    if isinstance(inst, c.Onbuild):
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), inst.expression]
        return cfg, f"{NOP} ONBUILD {inst.expression}"
    if isinstance(inst, c.Maintainer):
        return cfg, f"{NOP} MAINTAINER {inst.maintainer}"
    raise InvalidArgument(f"unsupported instruction {inst.keyword}")


def _healthcheck(cfg: dict[str, Any], inst: c.Healthcheck) -> tuple[dict[str, Any], str]:
    check: dict[str, Any] = {"Test": list(inst.test)}
    for key, value in (("Interval", inst.interval), ("Timeout", inst.timeout),
                       ("StartPeriod", inst.start_period),
                       ("StartInterval", inst.start_interval), ("Retries", inst.retries)):
        if value:
            check[key] = value
    cfg["Healthcheck"] = check
    return cfg, f"{NOP} HEALTHCHECK &{{{json.dumps(list(inst.test))} {inst.interval} " \
        f"{inst.timeout} {inst.start_period} {inst.retries}}}"
