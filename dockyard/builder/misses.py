"""Why a step missed the cache, in one line (`` ---> cache miss: RUN instruction changed``).

Said only when it is cheap to know: the same parent was built on before (so the instruction
or its build args changed; for COPY/ADD the copied files, named by
:func:`dockyard.builder.sources.explain_change`), the image a key pointed to was deleted, or
an earlier step of this stage missed for a known reason (so the parent changed). A first
build says nothing, and hits print exactly what they printed before.
"""
from __future__ import annotations

from dockyard.builder.cache import BuildCache, StepKey


def missed_reason(cache: BuildCache, key: StepKey, keyword: str, stale_hit: str = "",
                  diverged_at: str = "") -> str:
    """The reason for a miss, or "" when it is not known cheaply."""
    if stale_hit:
        return f"the cached image {_short(stale_hit)} no longer exists"
    seen = cache.steps_from(key.parent)
    if seen:
        same = [extra for instruction, extra in seen if instruction == key.instruction]
        if not same:
            return f"{keyword} instruction changed"
        changed = changed_args(same[-1], key.extra)
        if changed:
            return f"{keyword} build args changed: {', '.join(changed)}"
        return ""
    if diverged_at:
        return f"parent changed ({diverged_at} missed)"
    return ""


def changed_args(before: tuple[str, ...], now: tuple[str, ...]) -> list[str]:
    """Names of the ``NAME=value`` build args that differ between two steps."""
    old = dict(item.partition("=")[::2] for item in before)
    new = dict(item.partition("=")[::2] for item in now)
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]
