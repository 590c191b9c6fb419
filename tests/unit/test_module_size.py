"""Modules stay small: none under dockyard/ may exceed MAX_LINES (CONTRIBUTING aims at
~400; the limit leaves headroom so one more function does not fail the suite).

Failing here names every offender: split it along a real seam (a cohesive responsibility
in a sibling module), not at an arbitrary line.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "dockyard"
MAX_LINES = 450


def oversized(root: Path = ROOT, limit: int = MAX_LINES) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        with path.open("rb") as f:
            count = sum(1 for _ in f)
        if count > limit:
            found.append(f"{path.relative_to(root.parent)}: {count} lines (limit {limit})")
    return found


def test_no_module_exceeds_the_limit() -> None:
    offenders = oversized()
    assert not offenders, "modules over the size limit:\n" + "\n".join(offenders)


def test_the_check_names_the_offenders(tmp_path: Path) -> None:
    pkg = tmp_path / "dockyard"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "small.py").write_text("x = 1\n" * 3)
    (pkg / "sub" / "big.py").write_text("x = 1\n" * 4)
    assert oversized(pkg, limit=3) == ["dockyard/sub/big.py: 4 lines (limit 3)"]
