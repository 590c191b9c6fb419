"""``docker build``: receive the context, run the solver with engine steps, tag the result."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from dockyard.builder.cache import BuildCache
from dockyard.builder.context import BuildContext
from dockyard.builder.options import BuildOptions
from dockyard.builder.solver import Solver, short
from dockyard.engine.buildsteps import EngineSteps
from dockyard.engine.paths import Paths
from dockyard.types import reference

Emit = Callable[[dict[str, Any]], None]


def build(steps: EngineSteps, cache: BuildCache, paths: Paths, opts: BuildOptions,
          body: BinaryIO, emit: Emit) -> str:
    for tag in opts.tags:
        reference.parse(tag)  # refuse a bad -t before doing any work
    if opts.pull:
        emit({"stream": "--pull: no registry is reachable from this daemon; using local "
                        "images\n"})
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
