"""Data-plane tests: herd-runtime with real gunicorn, uvicorn, nginx and wrk on loopback."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from bench.harness.appservers import free_port
from bench.harness.nginx_wrk import Nginx, require_binary

DATAPLANE_DIR = pathlib.Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dataplane: real app servers, nginx and wrk on loopback")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items: mark only this directory's.
    for item in items:
        if DATAPLANE_DIR in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.dataplane)


@pytest.fixture
def nginx(tmp_path: pathlib.Path) -> Iterator[Nginx]:
    """An nginx of the test's own (prefix, config, pid and logs in tmp_path), not started."""
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    proxy = Nginx(require_binary("nginx"), prefix, free_port())
    try:
        yield proxy
    finally:
        proxy.stop()
