"""``pull_policy`` as ``compose up``/``create``/``run`` honour it (the converger's
``ensure_images`` against a fake client), and the image id behind ``com.docker.compose.image``."""
from __future__ import annotations

from typing import Any

import pytest

from dockyard.client.errors import APIError
from dockyard.compose import load_text
from dockyard.compose.conditions import ComposeError
from dockyard.compose.converge import Converger

IMAGE_ID = "sha256:" + "ab" * 32


class FakeClient:
    """``GET /images/{ref}/json`` answers for the references in ``present``, else 404."""

    def __init__(self, present: set[str]) -> None:
        self.present = set(present)
        self.inspected: list[str] = []

    def get(self, path: str, query: Any = None) -> dict[str, Any]:
        ref = path.removeprefix("/images/").removesuffix("/json")
        self.inspected.append(ref)
        if ref not in self.present:
            raise APIError(404, f"No such image: {ref}")
        return {"Id": IMAGE_ID}


def converger(text: str, present: set[str],
              pull_fails: bool = False) -> tuple[Converger, list[tuple[str, str]]]:
    project = load_text(text, name="p")
    client = FakeClient(present)
    conv = Converger(client, project, lambda *_: None)  # type: ignore[arg-type]
    done: list[tuple[str, str]] = []
    warnings: list[str] = []

    def pull(svc: Any) -> None:
        if pull_fails:
            raise ComposeError("pull access denied")
        done.append(("pull", svc.name))
        client.present.add(svc.image or f"p-{svc.name}")

    def build(svc: Any) -> None:
        done.append(("build", svc.name))
        client.present.add(svc.image or f"p-{svc.name}")
    conv.pull, conv.build = pull, build  # type: ignore[method-assign]
    conv.warn = warnings.append
    return conv, done


def svc(policy: str | None, build: bool = False) -> str:
    lines = "services:\n  web:\n    image: bb\n"
    if policy:
        lines += f"    pull_policy: {policy}\n"
    if build:
        lines += "    build: .\n"
    return lines


def test_missing_is_the_default_pulls_only_what_is_absent() -> None:
    conv, done = converger(svc(None), set())
    conv.ensure_images(["web"])
    assert done == [("pull", "web")]
    conv, done = converger(svc("missing"), {"bb"})
    conv.ensure_images(["web"])
    assert done == []
    conv, done = converger(svc("if_not_present"), set())
    conv.ensure_images(["web"])
    assert done == [("pull", "web")]


def test_always_pulls_even_when_present() -> None:
    conv, done = converger(svc("always"), {"bb"})
    conv.ensure_images(["web"])
    assert done == [("pull", "web")]


def test_always_with_a_build_section_builds_when_the_pull_fails() -> None:
    conv, done = converger(svc("always", build=True), set(), pull_fails=True)
    conv.ensure_images(["web"])
    assert done == [("build", "web")]
    conv, done = converger(svc("always"), set(), pull_fails=True)
    with pytest.raises(ComposeError, match="pull access denied"):
        conv.ensure_images(["web"])


def test_never_refuses_a_missing_image_it_cannot_build() -> None:
    conv, done = converger(svc("never"), set())
    with pytest.raises(ComposeError) as e:
        conv.ensure_images(["web"])
    assert str(e.value) == ('service "web" has pull_policy "never" and its image bb is not '
                            "present locally: No such image: bb")
    assert done == []
    conv, done = converger(svc("never"), {"bb"})
    conv.ensure_images(["web"])
    assert done == []
    conv, done = converger(svc("never", build=True), set())  # a build section still builds
    conv.ensure_images(["web"])
    assert done == [("build", "web")]


def test_build_builds_every_time() -> None:
    conv, done = converger(svc("build", build=True), {"bb"})
    conv.ensure_images(["web"])
    assert done == [("build", "web")]
    conv, done = converger(svc("missing", build=True), {"bb"})
    conv.ensure_images(["web"])
    assert done == []
    conv.ensure_images(["web"], build=True)  # up --build
    assert done == [("build", "web")]


def test_image_id_is_looked_up_once_and_again_after_ensure_images() -> None:
    conv, _ = converger(svc(None), {"bb"})
    web = conv.project.services["web"]
    assert conv.image_id(web) == IMAGE_ID
    assert conv.image_id(web) == IMAGE_ID
    client: FakeClient = conv.client  # type: ignore[assignment]
    assert client.inspected == ["bb"]
    conv.ensure_images(["web"])
    conv.image_id(web)
    assert client.inspected == ["bb", "bb", "bb"]
    conv, _ = converger(svc(None), set())
    assert conv.image_id(conv.project.services["web"]) is None
