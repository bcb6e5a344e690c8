"""Test tiers: tests under tests/integration get the `integration` marker and the local cluster."""

from __future__ import annotations

import pathlib

import pytest

INTEGRATION_DIR = pathlib.Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
