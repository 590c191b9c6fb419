"""Shared by the benchmark scripts (run as ``python bench/<name>.py``, so this is importable)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def samples_ms(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def median_ms(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(samples_ms(fn, runs))
