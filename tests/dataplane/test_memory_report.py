"""The memory report (herd_runtime.memory) from a real gunicorn: kept fresh while the server
runs, left in place by a kill that gives it no chance to speak, emptied by an orderly exit."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from bench.harness.appservers import (
    FASTAPI_APP,
    FLASK_APP,
    GTHREAD,
    UVICORN_WORKER,
    free_port,
    gunicorn_args,
    start_herd_server,
)
from bench.harness.cluster import eventually
from herd_runtime.memory import REPORT_PREFIX, children

WORKERS = 2


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("app", "worker_class"), [(FLASK_APP, GTHREAD), (FASTAPI_APP, UVICORN_WORKER)]
)
def test_the_report_follows_the_workers_and_an_orderly_exit_empties_it(
    tmp_path: Path, app: str, worker_class: str
):
    log = tmp_path / "termination-log"
    log.touch()  # as the kubelet's bind mount is there before the container starts
    port = free_port()
    args = gunicorn_args(app, port, worker_class, WORKERS)
    server = start_herd_server(args, tmp_path, port, HERD_MEMORY_REPORT=str(log))
    try:
        server.wait_healthy()
        arbiter = server.process.popen.pid

        def reported() -> dict | None:
            text = log.read_text()
            if not text.startswith(REPORT_PREFIX):
                return None
            report = json.loads(text.removeprefix(REPORT_PREFIX))
            return report if len(report["workers"]) == WORKERS else None

        report = eventually(reported, timeout=20, interval=0.5, what="a report of both workers")
        assert len(children(arbiter)) == WORKERS
        print(f"{worker_class}: {log.read_text()}")
        assert all(held > 2**20 for held in (report["server"], *report["workers"])), report
    finally:
        status = server.process.stop(signal.SIGTERM)
    assert status == 0, server.tail()
    assert log.read_text() == "", "an orderly exit leaves the log tail to explain it"


@pytest.mark.timeout(60)
def test_a_killed_server_leaves_its_last_report(tmp_path: Path):
    log = tmp_path / "termination-log"
    port = free_port()
    args = gunicorn_args(FLASK_APP, port, GTHREAD, WORKERS)
    server = start_herd_server(args, tmp_path, port, HERD_MEMORY_REPORT=str(log))
    try:
        server.wait_healthy()
        eventually(
            lambda: log.exists() and log.read_text().startswith(REPORT_PREFIX),
            timeout=20,
            interval=0.5,
            what="a first report",
        )
    finally:
        server.process.stop(signal.SIGKILL)
    assert log.read_text().startswith(REPORT_PREFIX)
