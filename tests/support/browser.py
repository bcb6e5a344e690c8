"""Debian's chromium, headless, driven by Playwright: the fixtures of the dashboard's browser
tests (tests/dashboard, tests/integration/test_dashboard.py). A missing chromium fails them
with the reason; Playwright never downloads a browser here."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import screenshots

CHROMIUM = Path("/usr/bin/chromium")
#: No network but loopback, no first-run or background work, a fresh profile per session.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    """chromium with a fresh profile; never a downloaded browser. Per module: while Playwright's
    sync API runs, its event loop is the thread's, and a later test's asyncio.run would fail."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's chromium at {CHROMIUM}: apt-get install -y "
            "chromium (hack/install-system-deps.sh installs it)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        yield context
        context.close()


#: What actions and `expect` assertions wait: Playwright's own 5 s for assertions missed a live
#: update under a loaded CI run (the weight still read 10% 5 s after the change to 50%).
PAGE_TIMEOUT_MS = 10_000


@pytest.fixture
def page(browser) -> Iterator[Any]:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    yield page
    page.close()


#: Distinct colours and non-white pixels of a PNG, counted by the browser's own decoder on a
#: blank page (no image library needed).
_COUNT_PIXELS = """async (url) => {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    colours.add(rgb);
    if (rgb !== 0xffffff) coloured++;
  }
  return {colours: colours.size, coloured, pixels: data.length / 4};
}"""


@pytest.fixture
def screenshot(browser, tmp_path, request) -> Callable[..., Path]:
    """Save a screenshot of a page under the test's tmp_path, and check it is no blank page.
    With `doc=NAME` and $HERD_SCREENSHOTS set (`make screenshots`), also write it as NAME.png
    there, with the tEXt chunks of `tests.support.screenshots`; `until`: a selector where that
    one ends, to keep it small."""

    def check(png: bytes, path: Path) -> None:
        blank = browser.new_page()
        try:
            url = "data:image/png;base64," + base64.b64encode(png).decode()
            counted = blank.evaluate(_COUNT_PIXELS, url)
        finally:
            blank.close()
        assert counted["colours"] > 8, f"{path} looks blank: {counted}"
        assert counted["coloured"] > counted["pixels"] * 0.05, f"{path} is mostly white: {counted}"

    def take(page: Any, name: str, doc: str | None = None, until: str | None = None) -> Path:
        path = tmp_path / f"{name}.png"
        check(page.screenshot(path=str(path), full_page=True), path)
        folder = os.environ.get(screenshots.ENVIRONMENT)
        if doc and folder:
            clip = None
            if until:
                box = page.locator(until).bounding_box()
                clip = {"x": 0, "y": 0, "width": page.viewport_size["width"]}
                clip["height"] = box["y"] + box["height"] + 16
            png = page.screenshot(full_page=True, clip=clip)
            made = {
                screenshots.TEST_KEY: request.node.nodeid,
                screenshots.TEMPLATES_KEY: screenshots.templates_hash(),
            }
            target = Path(folder) / f"{doc}.png"
            check(png, target)
            target.write_bytes(screenshots.with_text(png, made))
            assert target.stat().st_size < screenshots.MAX_BYTES, f"{target} is too big"
        return path

    return take
