"""The dashboard served on loopback over an in-memory API (`FakeUserKube`), for Debian's
chromium driven headless by Playwright (tests/support/browser.py, a plugin of
tests/conftest.py). No cluster: these run wherever `make venv` and hack/install-system-deps.sh
have run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import uvicorn

from bench.harness.appservers import free_port
from herd.dashboard.app import create_app
from herd.dashboard.views import allowed_hosts
from tests.support.fake_user_kube import FakeUserKube

REQUESTER = "tester@dashboard-tests"


@dataclass
class Dashboard:
    fake: FakeUserKube
    url: str
    host: str


@contextmanager
def serving(
    fake: FakeUserKube, namespace: str | None, prometheus: str | None = None
) -> Iterator[Dashboard]:
    port = free_port()
    hosts = allowed_hosts("127.0.0.1", port)
    app = create_app(fake, namespace, hosts, REQUESTER, prometheus=prometheus)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    try:
        yield Dashboard(fake, f"http://127.0.0.1:{port}", f"127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def fake() -> FakeUserKube:
    return FakeUserKube()


@pytest.fixture
def dashboard(fake) -> Iterator[Dashboard]:
    """The dashboard of namespace `shop`."""
    with serving(fake, "shop") as running:
        yield running
