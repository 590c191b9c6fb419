"""How each metadata instruction changes the image config, and the history text it leaves.

Pure functions over the run config (Docker's ``Config``): ENV, LABEL, CMD, ENTRYPOINT,
WORKDIR, USER, EXPOSE, VOLUME, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER, ARG.
``created_by`` strings are the classic builder's, byte for byte: the current SHELL, then
``#(nop) `` and the comment as two words for a commit (``/bin/sh -c #(nop)  CMD ["sh"]``,
two spaces) or as one for WORKDIR, COPY and ADD (``/bin/sh -c #(nop) WORKDIR /w``); lists
printed the way Go's ``%q`` (CMD, ENTRYPOINT, HEALTHCHECK) or ``%v`` (VOLUME, SHELL) print
them (:mod:`dockyard.builder.gofmt`).
"""
from __future__ import annotations

import copy
import posixpath
from collections.abc import Callable
from typing import Any

from dockyard.builder import commands as c
from dockyard.builder.gofmt import go_quote_rune, go_quoted_list
from dockyard.errors import InvalidArgument
from dockyard.util.timefmt import go_duration

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


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or ["/bin/sh", "-c"])


def nop(config: dict[str, Any], comment: str) -> str:
    """What a metadata commit leaves in history: ``<shell> #(nop)  <comment>``."""
    return " ".join([*shell_of(config), "#(nop) ", comment])


def nop_string(config: dict[str, Any], comment: str) -> str:
    """WORKDIR, COPY and ADD's form: ``<shell> #(nop) <comment>`` (one space)."""
    return " ".join([*shell_of(config), "#(nop) " + comment])


def arg_comment(pairs: list[tuple[str, str | None]]) -> str:
    """``ARG a=1 b``: the names and (expanded) defaults as written, not --build-arg values."""
    return "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in pairs)


def _command(inst: c._Command, shell: list[str]) -> list[str]:
    if inst.prepend_shell:
        return [*shell, " ".join(inst.command)] if inst.command else []
    return list(inst.command)


def apply(inst: c.Instruction, config: dict[str, Any], expand: Expand,
          expand_words: ExpandWords, inherited_cmd: bool) -> tuple[dict[str, Any], str]:
    """The config after ``inst`` and its history text. ``inherited_cmd``: CMD still comes
    from the base image (ENTRYPOINT then resets it, as Docker does)."""
    cfg = copy.deepcopy(config)
    if isinstance(inst, c.Workdir):
        path = expand(inst.path)
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cfg.get("WorkingDir") or "/", path))
        return cfg, nop_string(cfg, f"WORKDIR {cfg['WorkingDir']}")
    comment = _change(inst, cfg, expand, expand_words, inherited_cmd)
    return cfg, nop(cfg, comment)   # after SHELL: the new shell, as Docker


def _change(inst: c.Instruction, cfg: dict[str, Any], expand: Expand,
            expand_words: ExpandWords, inherited_cmd: bool) -> str:
    """Apply ``inst`` to ``cfg`` in place; the commit comment."""
    shell = shell_of(cfg)
    if isinstance(inst, c.Env):
        shown = []
        for key, raw in inst.pairs:
            if not key:
                raise InvalidArgument("ENV names can not be blank")
            value = expand(raw)
            set_env(cfg, key, value)
            shown.append(f"{key}={value}")
        return f"ENV {' '.join(shown)}"
    if isinstance(inst, c.Label):
        labels = dict(cfg.get("Labels") or {})
        shown = []
        for key, raw in inst.pairs:
            labels[expand(key)] = expand(raw)
            shown.append(f"{expand(key)}={expand(raw)}")
        cfg["Labels"] = labels
        return f"LABEL {' '.join(shown)}"
    if isinstance(inst, c.Cmd):
        cmd = _command(inst, shell)
        cfg["Cmd"] = cmd or None
        return f"CMD {go_quoted_list(cmd)}"
    if isinstance(inst, c.Entrypoint):
        entrypoint = _command(inst, shell)
        cfg["Entrypoint"] = entrypoint or None
        if inherited_cmd:
            cfg["Cmd"] = None
        return f"ENTRYPOINT {go_quoted_list(entrypoint)}"
    if isinstance(inst, c.User):
        cfg["User"] = expand(inst.user)
        return f"USER {cfg['User']}"
    if isinstance(inst, c.Expose):
        ports = dict(cfg.get("ExposedPorts") or {})
        shown = [port for raw in inst.ports for port in expand_words(raw)]
        for port in shown:
            ports.update({key: {} for key in exposed_ports(port)})
        cfg["ExposedPorts"] = ports
        return f"EXPOSE {' '.join(shown)}"   # as written (expanded), as Docker records it
    if isinstance(inst, c.Volume):
        volumes = dict(cfg.get("Volumes") or {})
        paths = [expand(p) for p in inst.paths]
        for path in paths:
            if not path.strip():
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes[path] = {}
        cfg["Volumes"] = volumes
        return f"VOLUME [{' '.join(paths)}]"
    if isinstance(inst, c.Shell):
        cfg["Shell"] = list(inst.shell)
        return f"SHELL [{' '.join(cfg['Shell'])}]"
    if isinstance(inst, c.StopSignal):
        cfg["StopSignal"] = expand(inst.signal)
        return f"STOPSIGNAL {cfg['StopSignal']}"
    if isinstance(inst, c.Healthcheck):
        return _healthcheck(cfg, inst)
    if isinstance(inst, c.Onbuild):
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), inst.expression]
        return f"ONBUILD {inst.expression}"
    if isinstance(inst, c.Maintainer):
        return f"MAINTAINER {inst.maintainer}"
    raise InvalidArgument(f"unsupported instruction {inst.keyword}")


def exposed_ports(spec: str) -> list[str]:
    """``EXPOSE`` words as Docker's port specs read them: ``80``, ``53/udp``, a range
    ``8000-8002/tcp`` (each port), or ``[ip:][host:]container``; keys ``<port>/<proto>``."""
    container = spec.rsplit(":", 1)[-1]
    port, _, proto = container.partition("/")
    proto = (proto or "tcp").lower()
    if not port:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    low, _, high = port.partition("-")
    try:
        start, end = int(low), int(high or low)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {port}") from None
    if not 0 <= start <= end <= 65535:
        raise InvalidArgument(f"invalid containerPort: {port}")
    return [f"{number}/{proto}" for number in range(start, end + 1)]


def _healthcheck(cfg: dict[str, Any], inst: c.Healthcheck) -> str:
    check: dict[str, Any] = {"Test": list(inst.test)}
    for key, value in (("Interval", inst.interval), ("Timeout", inst.timeout),
                       ("StartPeriod", inst.start_period),
                       ("StartInterval", inst.start_interval), ("Retries", inst.retries)):
        if value:
            check[key] = value
    cfg["Healthcheck"] = check
    # Go's %q of Docker's *HealthConfig: &{[tests] "interval" ... 'retries as a rune'}
    durations = " ".join(f'"{go_duration(ns)}"' for ns in (
        inst.interval, inst.timeout, inst.start_period, inst.start_interval))
    return f"HEALTHCHECK &{{{go_quoted_list(list(inst.test))} {durations} " \
        f"{go_quote_rune(inst.retries)}}}"
