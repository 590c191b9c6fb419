"""Golden tests: ``render(load_project(...))`` for each ``tests/golden/compose/<case>/``.

Each case holds ``compose.yaml`` (plus any ``.env``, extended or included files) and
``expected.yaml``, the rendered project with the case directory written as ``$PROJECT``. The OS
environment is fixed (``HOME=/home/user``); ``os_env.json`` in a case adds to it. After a
deliberate change, regenerate with ``UPDATE_GOLDEN=1 pytest tests/unit/test_compose_golden.py``
and review the diff.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dockyard.compose import ProjectOptions, load_project, render

HERE = Path(__file__).resolve().parents[1] / "golden" / "compose"
CASES = sorted(p.name for p in HERE.iterdir() if (p / "compose.yaml").exists())


def rendered(case: str) -> str:
    d = HERE / case
    os_env = {"HOME": "/home/user"}
    if (d / "os_env.json").exists():
        os_env.update(json.loads((d / "os_env.json").read_text()))
    project = load_project(ProjectOptions(project_dir=str(d), os_env=os_env, cwd=str(d)))
    return render(project).replace(str(d), "$PROJECT")


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    expected = HERE / case / "expected.yaml"
    text = rendered(case)
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(text)
    assert text == expected.read_text()


def test_render_is_stable_across_loads() -> None:
    for case in CASES:
        assert rendered(case) == rendered(case)
