"""The dashboard's screenshots in the docs (docs/images/*.png): each PNG records in tEXt chunks
the test that took it and a hash of the dashboard's templates and static files, so a unit test
can tell a screenshot of pages that have changed since (`make screenshots` takes them again)."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC_IMAGES = ROOT / "docs" / "images"
DASHBOARD = ROOT / "operator" / "herd" / "dashboard"
#: Set to a directory (docs/images), the browser tests write the docs' screenshots there.
ENVIRONMENT = "HERD_SCREENSHOTS"
TEST_KEY = "herd:test"
TEMPLATES_KEY = "herd:templates"
MAX_BYTES = 150_000
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def templates_hash() -> str:
    """sha256 over every file of the dashboard's templates/ and static/, by path and content."""
    digest = hashlib.sha256()
    for path in sorted(
        p for folder in ("templates", "static") for p in (DASHBOARD / folder).rglob("*")
    ):
        if path.is_file():
            digest.update(f"{path.relative_to(DASHBOARD)}\0".encode())
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    found, at = [], len(_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        found.append((png[at + 4 : at + 8], png[at + 8 : at + 8 + length]))
        at += 12 + length
    return found


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_text(png: bytes, texts: dict[str, str]) -> bytes:
    """`png` with a tEXt chunk per entry, right after its header (IHDR)."""
    chunks = _chunks(png)
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("a PNG starts with IHDR")
    added = b"".join(
        _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
        for key, value in texts.items()
    )
    header = len(_SIGNATURE) + 12 + len(chunks[0][1])
    return png[:header] + added + png[header:]


def texts(png: bytes) -> dict[str, str]:
    """The PNG's tEXt chunks, keyword to text."""
    found = {}
    for kind, data in _chunks(png):
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
    return found


def referenced(markdown: Path) -> list[Path]:
    """The PNGs under docs/images a Markdown page shows."""
    names = re.findall(r"\]\((images/[^)\s]+\.png)\)", markdown.read_text())
    return [markdown.parent / name for name in names]


def problem(path: Path, current: str) -> str | None:
    """Why the screenshot at `path` cannot stay in the docs as it is, or None: it is missing,
    does not say how it was made, shows templates other than `current`'s, or is too big."""
    if not path.is_file():
        return f"{path.name} is missing: make screenshots"
    png = path.read_bytes()
    try:
        made = texts(png)
    except (ValueError, struct.error):
        return f"{path.name} is not a PNG"
    if TEST_KEY not in made or TEMPLATES_KEY not in made:
        return f"{path.name} does not say which test took it: make screenshots"
    if made[TEMPLATES_KEY] != current:
        return f"{path.name} shows older templates than the dashboard's: make screenshots"
    if len(png) >= MAX_BYTES:
        return f"{path.name} is {len(png)} bytes, over {MAX_BYTES}"
    return None
