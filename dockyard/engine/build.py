"""``docker build``: receive the context, run the solver with engine steps, tag the result.

:func:`run` is ``POST /build``: engine steps for this build's options (``--rm``,
``--force-rm``) and a :class:`~dockyard.engine.buildpull.BuildPuller` over the engine's
registries for FROM images that are missing (or all of them with ``--pull``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard.builder.cache import BuildCache
from dockyard.builder.context import BuildContext
from dockyard.builder.options import BuildOptions
from dockyard.builder.solver import Solver, short
from dockyard.engine.buildpull import BuildPuller
from dockyard.engine.buildsteps import EngineSteps
from dockyard.engine.paths import Paths
from dockyard.types import reference

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine

Emit = Callable[[dict[str, Any]], None]


def run(engine: "Engine", opts: BuildOptions, body: BinaryIO, emit: Emit,
        registry_config: str = "") -> str:
    """One ``POST /build`` against the engine; ``registry_config`` is X-Registry-Config."""
    epoch = str(opts.build_args.get("SOURCE_DATE_EPOCH") or "")
    steps = EngineSteps(engine.containers, engine.lifecycle, engine.images,
                        int(epoch) if epoch.isdigit() else None)
    puller = BuildPuller(engine.registries, opts.pull, registry_config or "",
                         (lambda message: None) if opts.quiet else emit)
    return build(steps, engine.build_cache, engine.paths, opts, body, emit, puller)


def build(steps: EngineSteps, cache: BuildCache, paths: Paths, opts: BuildOptions,
          body: BinaryIO, emit: Emit, puller: BuildPuller | None = None) -> str:
    for tag in opts.tags:
        reference.parse(tag)  # refuse a bad -t before doing any work
    steps = steps.configured(opts.removal, puller)
    context = BuildContext.receive(body, dockerfile=opts.dockerfile, tmp_dir=paths.tmp)
    try:
        solver = Solver(steps, cache, context.root, opts, emit)
        image_id = solver.build(context.dockerfile_text)
    finally:
        context.cleanup()
    emit({"aux": {"ID": image_id}})
    if opts.quiet:
        emit({"stream": image_id + "\n"})
        for tag in opts.tags:
            steps.tag(image_id, tag)
        return image_id
    emit({"stream": f"Successfully built {short(image_id)}\n"})
    for tag in opts.tags:
        emit({"stream": f"Successfully tagged {steps.tag(image_id, tag)}\n"})
    steps.images.events.publish("image", "build", image_id)
    return image_id
