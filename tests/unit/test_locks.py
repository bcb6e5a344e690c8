"""The images install their Python dependencies from hashed lock files: every pin has a
version and a hash, and every dependency the pyprojects declare is pinned."""

import pathlib
import re
import tomllib

import pytest

REPO = pathlib.Path(__file__).parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==[^\s\\]+ \\$")


def pins(lock: pathlib.Path) -> dict[str, list[str]]:
    """Package name -> its hashes."""
    found: dict[str, list[str]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            name = match.group(1).lower().replace("_", "-")
            found[name] = []
        elif line.strip().startswith("--hash=sha256:") and name:
            found[name].append(line.strip())
    return found


def declared(*pyprojects: str) -> set[str]:
    names = set()
    for path in pyprojects:
        for dependency in tomllib.loads((REPO / path).read_text())["project"]["dependencies"]:
            name = re.split(r"[<>=!~\[; ]", dependency, maxsplit=1)[0].lower().replace("_", "-")
            if not name.startswith("herd-"):
                names.add(name)
    return names


@pytest.mark.parametrize(
    ("lock", "pyprojects"),
    [
        ("requirements.lock", ("pyproject.toml",)),
        (
            "apps/examples/requirements.txt",
            ("apps/runtime/pyproject.toml", "apps/examples/pyproject.toml"),
        ),
        ("apps/runtime/inject.lock", ("apps/runtime/pyproject.toml",)),
    ],
)
def test_every_declared_dependency_is_pinned_with_hashes(lock, pyprojects):
    locked = pins(REPO / lock)
    assert declared(*pyprojects) <= set(locked), "run make lock"
    assert all(locked.values()), [n for n, hashes in locked.items() if not hashes]


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_the_plain_images_hold_their_framework_and_nothing_of_herds(framework):
    locked = set(pins(REPO / f"apps/examples/plain-{framework}.lock"))
    assert framework in locked
    assert not locked & {"gunicorn", "uvicorn", "prometheus-client", "uvicorn-worker"}
