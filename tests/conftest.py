"""Test tiers: tests under tests/integration get the `integration` marker and the local cluster;
a test that stops the cluster (`stops_cluster`) runs after all the others, and one that restarts
part of it (`disrupts_cluster`: the API server) alone before that, never beside another test.

Under pytest-xdist (`make test` runs two workers, `--dist loadgroup`), the tests that load the
machine run one after another on one worker, as they were written to: the real node's tests
(traffic shares, requests under load) and the data plane's (timings against nginx). Every
`helm install` runs one after another too (the chart's cluster-wide roles have fixed names), in
a group of its own: it only waits on the API server, so it runs beside the loaded group, on the
other worker with the rest.
"""

from __future__ import annotations

import pathlib

import pytest

#: chromium driven by Playwright (`browser`, `page`, `screenshot`): the dashboard's browser tests
#: in tests/dashboard and tests/integration/test_dashboard.py.
pytest_plugins = ("tests.support.browser",)

TESTS = pathlib.Path(__file__).parent
INTEGRATION_DIR = TESTS / "integration"
#: xdist group -> the tests that run one after another, on one worker.
SERIAL = {
    "serial": (INTEGRATION_DIR / "real", TESTS / "dataplane"),
    "helm": (INTEGRATION_DIR / "test_chart.py", INTEGRATION_DIR / "test_packaging.py"),
}


def pytest_itemcollected(item: pytest.Item) -> None:
    # Marked as each test is collected, so before any pytest_collection_modifyitems: xdist's own
    # turns xdist_group marks into node ids there, whichever order the hooks run in.
    path = pathlib.Path(item.fspath)
    if INTEGRATION_DIR in path.parents:
        item.add_marker(pytest.mark.integration)
    for group, places in SERIAL.items():
        if any(place == path or place in path.parents for place in places):
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("stops_cluster") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `--dist loadgroup`, fail at once if xdist did not group the serial tests, rather
    than run them on both workers at once."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    ungrouped = [
        item.nodeid
        for item in session.items
        if (marker := item.get_closest_marker("xdist_group"))
        and not item.nodeid.endswith(f"@{marker.args[0]}")
    ]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist did not group {len(ungrouped)} serial tests (e.g. {ungrouped[0]}): "
            "its loadgroup does not work with this pytest (see pyproject.toml)"
        )
