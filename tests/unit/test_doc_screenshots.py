"""The dashboard's screenshots in the docs are of the dashboard as it is: each one the docs
show exists, says which test took it, and was taken of the current templates and static files
(a change to them fails this until `make screenshots` has run)."""

from __future__ import annotations

import base64

import pytest

from tests.support import screenshots

DOCS = screenshots.ROOT / "docs"
#: A 1×1 PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
MADE = {screenshots.TEST_KEY: "tests/x.py::test_y", screenshots.TEMPLATES_KEY: "abc"}


@pytest.mark.parametrize("page", ["cli.md", "getting-started.md"])
def test_the_screenshots_the_docs_show_are_of_the_current_dashboard(page):
    shown = screenshots.referenced(DOCS / page)
    assert shown, f"docs/{page} shows no screenshot of the dashboard"
    current = screenshots.templates_hash()
    problems = [p for p in (screenshots.problem(path, current) for path in shown) if p]
    assert problems == []


def test_text_chunks_round_trip_and_keep_the_image():
    png = screenshots.with_text(PIXEL, MADE)
    assert screenshots.texts(png) == MADE
    assert screenshots.texts(PIXEL) == {}
    assert png.endswith(PIXEL[-12:])  # still ends with IEND: the image data is untouched


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "is missing"),
        (b"GIF89a", "is not a PNG"),
        (PIXEL, "does not say which test took it"),
        (screenshots.with_text(PIXEL, {**MADE, screenshots.TEMPLATES_KEY: "old"}), "older"),
        (screenshots.with_text(PIXEL, MADE) + b"\0" * screenshots.MAX_BYTES, "bytes, over"),
        (screenshots.with_text(PIXEL, MADE), None),
    ],
    ids=["missing", "not-png", "no-chunk", "stale", "too-big", "current"],
)
def test_problem(tmp_path, content, says):
    path = tmp_path / "shot.png"
    if content is not None:
        path.write_bytes(content)
    found = screenshots.problem(path, "abc")
    assert (found is None) if says is None else (says in found)


def test_a_change_to_a_template_changes_the_hash(tmp_path, monkeypatch):
    for folder in ("templates", "static"):
        (tmp_path / folder).mkdir()
    (tmp_path / "templates" / "base.html").write_text("<p>one</p>")
    monkeypatch.setattr(screenshots, "DASHBOARD", tmp_path)
    before = screenshots.templates_hash()
    (tmp_path / "templates" / "base.html").write_text("<p>two</p>")
    assert screenshots.templates_hash() != before
