"""Test tiers: tests under tests/integration get the `integration` marker and the local cluster;
a test that stops the cluster (`stops_cluster`) runs after all the others."""

from __future__ import annotations

import pathlib

import pytest

INTEGRATION_DIR = pathlib.Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("stops_cluster") is not None)
