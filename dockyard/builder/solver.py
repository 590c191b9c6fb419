"""Runs a parsed Dockerfile: stages in dependency order, one cached step per instruction.

Output follows the classic builder (``Step 2/4 : RUN …``, `` ---> Using cache``,
`` ---> Running in <id>``, `` ---> Removed intermediate container <id>``, `` ---> <id>``,
``Successfully built/tagged``) plus one line saying *why* a step missed the cache when that is
cheap to know (:mod:`dockyard.builder.misses`), and, with ``explain_cache``, each step's
cache key. Flags the classic builder does not carry out are refused
(:mod:`dockyard.builder.unsupported`).
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.builder import commands as c
from dockyard.builder import stepconfig, unsupported
from dockyard.builder.cache import BuildCache, StepKey
from dockyard.builder.executor import ImageRef, RunOptions, StepExecutor
from dockyard.builder.instructions import Dockerfile, Stage, parse_stages, resolve_meta_args
from dockyard.builder.misses import missed_reason
from dockyard.builder.options import BuildOptions
from dockyard.builder.parser import Heredoc
from dockyard.builder.shell import Lexer, expand_word, expand_words, go_quote
from dockyard.builder.placement import copy_into
from dockyard.builder.sources import (ContentMemo, Source, digest_sources, explain_change,
                                      resolve_sources)
from dockyard.errors import InvalidArgument

Emit = Callable[[dict[str, Any]], None]


def short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


@dataclass
class StageState:
    image: ImageRef
    config: dict[str, Any]
    args: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str | None] = field(default_factory=dict)  # ARGs before the first FROM
    inherited_cmd: bool = True
    maintainer: str = ""   # MAINTAINER: the author of this stage's later images


class Solver:
    def __init__(self, steps: StepExecutor, cache: BuildCache, context_root: Path,
                 opts: BuildOptions, emit: Emit) -> None:
        self.steps = steps
        self.cache = cache
        self.context = context_root
        self.opts = opts
        self.emit = emit
        self.memo: ContentMemo = {}
        self.stage_images: dict[str, ImageRef] = {}
        self.step_no = 0
        self.total = 0
        self.used_args: set[str] = set()
        self.maintainer = ""    # the last stage's MAINTAINER (for --label)
        self.diverged_at = ""   # "step 3" once a step of this stage missed for a known reason

    def say(self, text: str) -> None:
        if not self.opts.quiet:
            self.emit({"stream": text})

    # -- the whole build ----------------------------------------------------------------
    def build(self, text: str) -> str:
        dockerfile = parse_stages(text)
        unsupported.check_parsed(dockerfile)
        stages = self._needed(dockerfile)
        # the classic builder prints the ARGs before the first FROM as steps (one per line)
        meta_lines = {(a.start_line, a.original): None for a in dockerfile.meta_args}
        self.total = len(meta_lines) + sum(1 + len(_steps(s.instructions)) for s in stages) \
            + (1 if self.opts.labels else 0)   # --label: one more LABEL step, as Docker
        for _, original in meta_lines:
            self.step_no += 1
            self.say(f"Step {self.step_no}/{self.total} : {original.strip()}\n")
        image = ImageRef("")
        for stage in stages:
            image = self._stage(dockerfile, stage)
            self.stage_images[stage.name.lower() or str(dockerfile.stages.index(stage))] = image
            self.stage_images[str(dockerfile.stages.index(stage))] = image
        if self.opts.labels:
            image = self._labels(image)
        unused = sorted(set(self.opts.build_args) - self.used_args - {"SOURCE_DATE_EPOCH"} -
                        {a.name for a in dockerfile.meta_args})
        if unused:
            self.say(f"[Warning] One or more build-args {unused} were not consumed\n")
        return image.id

    def _needed(self, dockerfile: Dockerfile) -> list[Stage]:
        """The target stage and the stages it depends on (FROM <stage>, COPY --from)."""
        stages = dockerfile.stages
        if not stages:
            raise InvalidArgument("no build stage in current context")
        names = {s.name.lower(): i for i, s in enumerate(stages) if s.name}
        if self.opts.target:
            if self.opts.target.lower() not in names:
                raise InvalidArgument(f"failed to reach build target {self.opts.target} in "
                                      "Dockerfile")
            last = names[self.opts.target.lower()]
        else:
            last = len(stages) - 1
        needed = {last}
        for i in range(last, -1, -1):
            if i not in needed:
                continue
            for dep in self._deps(dockerfile, stages[i], names):
                if dep < i:
                    needed.add(dep)
        return [s for i, s in enumerate(stages) if i in needed]

    def _deps(self, dockerfile: Dockerfile, stage: Stage, names: dict[str, int]) -> list[int]:
        deps = []
        base = dockerfile.expand_from(stage, self.opts.build_args).lower()
        refs = [base] + [i.from_stage.lower() for i in stage.instructions
                         if isinstance(i, c.Copy) and i.from_stage]
        for ref in refs:
            if ref in names:
                deps.append(names[ref])
            elif ref.isdigit():
                deps.append(int(ref))
        return deps

    # -- one stage ----------------------------------------------------------------------
    def _stage(self, dockerfile: Dockerfile, stage: Stage) -> ImageRef:
        self.step_no += 1
        self.say(f"Step {self.step_no}/{self.total} : {stage.original}\n")
        self.diverged_at = ""
        if stage.platform:
            env = {"BUILDPLATFORM": "linux/amd64", "TARGETPLATFORM": "linux/amd64",
                   **resolve_meta_args(dockerfile.meta_args, self.opts.build_args,
                                       dockerfile.escape)}
            unsupported.check_platform(expand_word(stage.platform, env, dockerfile.escape))
        base_name = dockerfile.expand_from(stage, self.opts.build_args)
        base = self.stage_images.get(base_name.lower()) or self.steps.resolve(base_name)
        self.say(f" ---> {short(base.id)}\n" if base.id else " ---> \n")
        meta = {a.name: self.opts.build_args.get(a.name, a.default) for a in
                dockerfile.meta_args}
        state = StageState(base, dict(base.run_config), meta=meta)
        if base.on_build:  # run once, in this build: the stage's images do not inherit them
            state.config.pop("OnBuild", None)
            plural = "s" if len(base.on_build) > 1 else ""
            self.say(f"# Executing {len(base.on_build)} build trigger{plural}\n")
        for trigger in base.on_build:
            for step in _steps(parse_stages(f"FROM scratch\n{trigger}\n").stages[0].instructions):
                self._step(state, step, dockerfile.escape)
        for step in _steps(stage.instructions):
            self.step_no += 1
            self.say(f"Step {self.step_no}/{self.total} : {step[0].original}\n")
            self._step(state, step, dockerfile.escape)
        self.maintainer = state.maintainer
        return state.image

    def _env(self, state: StageState) -> dict[str, str]:
        env = dict(state.args)
        env.update(stepconfig.env_dict(state.config))
        return env

    def _step(self, state: StageState, step: tuple[c.Instruction, ...], escape: str) -> None:
        """One step: an instruction, or the ARGs of one ``ARG a=1 b`` line (one commit)."""
        inst = step[0]
        if isinstance(inst, c.Arg):
            self._args(state, step, escape)
            return
        env = self._env(state)

        def expand(word: str) -> str:
            return expand_word(word, env, escape)

        def words(word: str) -> list[str]:
            return expand_words(word, env, escape)

        unsupported.check_step(inst)
        if isinstance(inst, c.Run):
            self._run(state, inst)
        elif isinstance(inst, (c.Copy, c.Add)):
            self._transfer(state, inst, expand)
        else:
            config, created_by = stepconfig.apply(inst, state.config, expand, words,
                                                  state.inherited_cmd)
            if isinstance(inst, (c.Cmd, c.Entrypoint)):
                state.inherited_cmd = False
            if isinstance(inst, c.Maintainer):
                state.maintainer = inst.maintainer
            if isinstance(inst, c.Healthcheck):
                old = (state.config.get("Healthcheck") or {}).get("Test") or []
                if old and old[0] != "NONE":
                    self.say(f"Note: overriding previous HEALTHCHECK: [{' '.join(old)}]\n")
            workdir = config["WorkingDir"] if isinstance(inst, c.Workdir) else ""
            self._commit(state, config, created_by, inst.keyword, workdir)

    def _commit(self, state: StageState, config: dict[str, Any], created_by: str,
                keyword: str, workdir: str = "") -> None:
        """A metadata step (WORKDIR also makes its directory), cached by parent and text."""
        self._cached_or(state, StepKey(state.image.id, created_by), created_by,
                        self._metadata(state.image, config, created_by, state.maintainer,
                                       workdir), config, keyword)

    def _args(self, state: StageState, args: tuple[c.Instruction, ...], escape: str) -> None:
        """``ARG``: declares the names for later steps and commits, as the classic builder
        does, an image whose history says ``ARG a=1 b`` (defaults, not --build-arg values)."""
        shown: list[tuple[str, str | None]] = []
        for inst in args:
            assert isinstance(inst, c.Arg)
            default = None if inst.default is None else \
                expand_word(inst.default, self._env(state), escape)
            shown.append((inst.name, default))
            self._arg(state, inst, default)
        created_by = stepconfig.nop(state.config, stepconfig.arg_comment(shown))
        self._commit(state, dict(state.config), created_by, "ARG")

    def _arg(self, state: StageState, inst: c.Arg, default: str | None) -> None:
        value = default
        if inst.name in self.opts.build_args:
            value = str(self.opts.build_args[inst.name])
            self.used_args.add(inst.name)
        elif value is None:
            value = state.meta.get(inst.name)   # a meta ARG's value, if it has one
        if value is not None:
            state.args[inst.name] = value

    # -- steps that touch the filesystem ------------------------------------------------
    def _run(self, state: StageState, inst: c.Run) -> None:
        shell = list(state.config.get("Shell") or ["/bin/sh", "-c"])
        if inst.heredocs and inst.prepend_shell:
            argv = [*shell, "\n".join(h.content for h in inst.heredocs)]
        elif inst.prepend_shell:
            argv = [*shell, " ".join(inst.command)]
        else:
            argv = list(inst.command)
        env_names = set(stepconfig.env_dict(state.config))
        args = {k: v for k, v in state.args.items() if k not in env_names}
        pairs = sorted(f"{k}={v}" for k, v in args.items())   # Go's sort.Strings of "k=v"
        prefix = f"|{len(pairs)} {' '.join(pairs)} " if pairs else ""
        created_by = prefix + " ".join(argv)
        opts = RunOptions(network=inst.network if inst.network != "default" else
                          self.opts.network, memory=self.opts.memory,
                          memory_swap=self.opts.memory_swap, cpu_shares=self.opts.cpu_shares,
                          extra_hosts=self.opts.extra_hosts)
        key = StepKey(state.image.id, "RUN " + json.dumps(argv), extra=tuple(
            f"{k}={v}" for k, v in args.items()))

        self._cached_or(state, key, created_by, self._announcing(
            lambda announce: self.steps.run(
                state.image, dict(state.config), argv, opts, self._output, created_by,
                announce=announce, author=state.maintainer,
                build_env=tuple(f"{k}={v}" for k, v in args.items()))),
            state.config, "RUN")

    def _announcing(self, step: Callable[[Callable[[str], None]], str]) -> Callable[[], str]:
        """``step`` with the classic builder's lines for the containers it makes: `` --->
        Running in <id>``, then `` ---> Removed intermediate container <id>`` if removed."""
        def execute() -> str:
            containers: list[str] = []

            def announce(cid: str) -> None:
                containers.append(cid)
                self.say(f" ---> Running in {cid[:12]}\n")

            def removed(succeeded: bool) -> None:
                if self.opts.removal.removes(succeeded):
                    for cid in containers:
                        self.say(f" ---> Removed intermediate container {cid[:12]}\n")
            try:
                image_id = step(announce)
            except Exception:
                removed(False)
                raise
            removed(True)
            return image_id
        return execute

    def _metadata(self, parent: ImageRef, config: dict[str, Any], created_by: str,
                  author: str = "", workdir: str = "") -> Callable[[], str]:
        return self._announcing(lambda announce: self.steps.metadata(
            parent, config, created_by, announce=announce, author=author, workdir=workdir))

    def _output(self, data: bytes) -> None:
        self.say(data.decode("utf-8", "replace"))

    def _transfer(self, state: StageState, inst: c.Copy | c.Add,
                  expand: Callable[[str], str]) -> None:
        is_add = isinstance(inst, c.Add)
        from_stage = expand(inst.from_stage) if isinstance(inst, c.Copy) and inst.from_stage \
            else ""
        sources_text = [expand(s) for s in inst.sources]
        dest = expand(inst.dest)
        with tempfile.TemporaryDirectory(dir=self.context.parent) as inline:
            inline_sources = _inline_files(inst.heredocs, Path(inline), self._env(state))
            if from_stage:
                source_image = self.stage_images.get(from_stage.lower()) or \
                    self.steps.resolve(from_stage)
                with self.steps.rootfs(source_image) as root:
                    self._copy_from(state, inst, root, sources_text, dest, is_add,
                                    from_stage, inline_sources)
            else:
                self._copy_from(state, inst, self.context, sources_text, dest, is_add, "",
                                inline_sources)

    def _copy_from(self, state: StageState, inst: c.Copy | c.Add, root: Path,
                   requested: list[str], dest: str, is_add: bool, from_stage: str,
                   inline: list[Source]) -> None:
        sources = resolve_sources(root, requested, is_add=is_add,
                                  from_context=not from_stage) if requested or not inline \
            else []
        sources += inline
        digest = digest_sources(sources, self.memo)
        word = inst.keyword
        created_by = stepconfig.nop_string(state.config, f"{word} {_chown_comment(inst)}"
                                           f"{_source_hash(sources, digest.digest)} in {dest} ")
        heredocs = " ".join(f"<<{'' if d.expand else '-raw'}{d.name}" for d in inst.heredocs)
        key = StepKey(state.image.id, f"{word} {json.dumps(requested)}{heredocs} {dest} "
                      f"chown={inst.chown} chmod={inst.chmod} from={from_stage}",
                      sources=digest.digest)

        def files_changed() -> str:
            previous = self.cache.sources_for(key)
            changes = explain_change(previous, digest.files) if previous is not None else []
            return f"{word} {' '.join(requested)} {', '.join(changes[:3])}" \
                f"{' …' if len(changes) > 3 else ''}" if changes else ""
        workdir = state.config.get("WorkingDir") or "/"

        def fill(rootfs: Path) -> None:
            owner = _owner(rootfs, inst.chown) if inst.chown else None
            chmod = int(inst.chmod, 8) if inst.chmod else None
            copy_into(sources, dest, rootfs, owner, chmod, is_add, workdir=workdir)

        self._cached_or(state, key, created_by,
                        lambda: self.steps.write(state.image, state.config, created_by, fill,
                                                author=state.maintainer),
                        state.config, word, files_changed)
        self.cache.remember_sources(key, dict(digest.files))

    # -- the cache ----------------------------------------------------------------------
    def _cached_or(self, state: StageState, key: StepKey, created_by: str,
                   execute: Callable[[], str], config: dict[str, Any], keyword: str,
                   files_changed: Callable[[], str] = lambda: "") -> None:
        if self.opts.explain_cache:
            self.say(f" ---> cache key {key.digest[7:19]}: {key.explain()}\n")
        hit = None if self.opts.no_cache else self.cache.get(key)
        image = self.steps.get(hit) if hit else None
        if image is not None:
            self.say(" ---> Using cache\n")
        else:
            if not self.opts.no_cache:
                self._explain_miss(key, keyword, hit or "", files_changed)
            image_id = execute()
            self.cache.put(key, image_id)
            self.cache.remember_step(key)
            image = self.steps.get(image_id)
            assert image is not None
        self.say(f" ---> {short(image.id)}\n")
        state.image = image
        state.config = dict(image.run_config) if image.run_config else dict(config)

    def _explain_miss(self, key: StepKey, keyword: str, stale_hit: str,
                      files_changed: Callable[[], str]) -> None:
        reason = "" if stale_hit else files_changed()
        reason = reason or missed_reason(self.cache, key, keyword, stale_hit, self.diverged_at)
        if reason:
            self.say(f" ---> cache miss: {reason}\n")
            self.diverged_at = self.diverged_at or f"step {self.step_no}"

    def _labels(self, image: ImageRef) -> ImageRef:
        """``--label``: the classic builder appends ``LABEL "k"='v'`` (sorted) to the
        Dockerfile, so it is a step of its own."""
        self.step_no += 1
        self.say(f"Step {self.step_no}/{self.total} : LABEL " + " ".join(
            f"{go_quote(k)}='{v}'" for k, v in sorted(self.opts.labels.items())) + "\n")
        config = dict(image.run_config)
        labels = dict(config.get("Labels") or {})
        labels.update(self.opts.labels)
        config["Labels"] = labels
        created_by = stepconfig.nop(config, "LABEL " + " ".join(
            f"{k}={v}" for k, v in sorted(self.opts.labels.items())))
        state = StageState(image, config)
        self._cached_or(state, StepKey(image.id, created_by), created_by,
                        self._metadata(image, config, created_by, self.maintainer), config,
                        "LABEL")
        return state.image


def _steps(instructions: tuple[c.Instruction, ...]) -> list[tuple[c.Instruction, ...]]:
    """The build steps: one per instruction, the ARGs of one line together (``ARG a b``)."""
    steps: list[tuple[c.Instruction, ...]] = []
    for inst in instructions:
        last = steps[-1][0] if steps else None
        if isinstance(inst, c.Arg) and isinstance(last, c.Arg) and \
                (last.start_line, last.original) == (inst.start_line, inst.original):
            steps[-1] += (inst,)
        else:
            steps.append((inst,))
    return steps


def _source_hash(sources: list[Source], digest: str) -> str:
    """``file:<hex>``, ``dir:<hex>``, or ``multi:<hex>`` for several sources (as Docker)."""
    kind = "multi" if len(sources) > 1 else "dir" if sources[0].is_dir else "file"
    return f"{kind}:{digest[7:]}"


def _chown_comment(inst: c.Copy | c.Add) -> str:
    """Docker writes ``--chown=<spec>`` straight before the hash, with no space."""
    return f"--chown={inst.chown}" if inst.chown else ""


def _inline_files(heredocs: tuple[Heredoc, ...], where: Path,
                  env: dict[str, str]) -> list[Source]:
    """COPY/ADD ``<<NAME`` sources as files ``NAME`` (0644, mtime 0 so layers repeat); the
    body's variables are expanded unless the name was quoted, quotes kept (as buildkit)."""
    out = []
    for doc in heredocs:
        if not doc.name or "/" in doc.name or doc.name in (".", ".."):
            raise InvalidArgument(f"invalid heredoc name: {doc.name!r}")
        text = Lexer(skip_quotes=True).process(doc.content, env).word if doc.expand \
            else doc.content
        path = where / doc.name
        path.write_text(text)
        path.chmod(0o644)
        os.utime(path, (0, 0))
        out.append(Source(doc.name, path, False))
    return out


def _owner(rootfs: Path, chown: str) -> tuple[int, int]:
    from dockyard.runtime.spec_user import resolve_user
    uid, gid, _ = resolve_user(rootfs, chown)
    return uid, gid
