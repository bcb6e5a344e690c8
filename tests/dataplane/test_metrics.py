"""Metrics of real gunicorn servers: exact counts across max_requests restarts, a bounded
multiprocess directory, route templates as labels, and a health path that stays out of both
the app and the metrics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.harness.appservers import (
    FASTAPI_APP,
    FLASK_APP,
    GTHREAD,
    LOOPBACK,
    UVICORN_WORKER,
    HerdServer,
    free_port,
    get,
    gunicorn_args,
    herd_server,
    label_values,
    send_concurrently,
    total,
)

REQUESTS = 600
REQUESTS_TOTAL = "http_requests_total"


def wait_for_total(server: HerdServer, expected: int, timeout: float = 10) -> float:
    """A request counts when the server closes its response, just after the client got it."""
    deadline = time.monotonic() + timeout
    while True:
        counted = total(server.scrape(), REQUESTS_TOTAL)
        if counted >= expected or time.monotonic() > deadline:
            return counted
        time.sleep(0.1)


def scrape_seconds(server: HerdServer, scrapes: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(scrapes):
        server.scrape()
    return (time.perf_counter() - started) / scrapes


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("app", "worker_class", "workers"),
    [(FLASK_APP, GTHREAD, 3), (FASTAPI_APP, UVICORN_WORKER, 2)],
    ids=["flask-gthread", "fastapi-uvicorn"],
)
def test_counts_stay_exact_across_worker_restarts(
    tmp_path: Path, record_property, app: str, worker_class: str, workers: int
) -> None:
    port = free_port()
    args = gunicorn_args(app, port, worker_class, workers, max_requests=50, max_requests_jitter=10)
    with herd_server(args, tmp_path, port) as server:
        paths = [("/", "/io?ms=2", "/cpu?ms=1", "/items/7")[i % 4] for i in range(REQUESTS)]
        load = send_concurrently(port, paths)
        assert load.statuses == {200: REQUESTS}

        counted = wait_for_total(server, REQUESTS)
        restarts = server.process.log().count("Booting worker with pid") - workers
        files = server.metric_files()
        seconds = scrape_seconds(server)
        record_property("client_resets", load.resets)
        record_property("worker_restarts", restarts)
        record_property("metric_files", len(files))
        record_property("scrape_ms", round(seconds * 1000, 2))
        print(
            f"{app}: {restarts} restarts, {load.resets} connections reset and retried, "
            f"{len(files)} files, scrape {seconds * 1000:.1f} ms"
        )

        assert counted == REQUESTS, f"counted {counted} of {REQUESTS} requests"
        # gthread replaces a worker after 50 to 60 requests; uvicorn checks its count every
        # 100 ms, so a busy worker serves more before it leaves. Either way: several restarts.
        assert restarts >= 3, "workers should have restarted several times"
        # Three files (counter, histogram, in-flight gauge) per live worker, one archive per
        # type, and room for a worker or so not yet archived.
        assert len(files) <= 4 * workers + 4, files


@pytest.mark.timeout(60)
def test_route_label_is_the_template(tmp_path: Path) -> None:
    port = free_port()
    with herd_server(gunicorn_args(FLASK_APP, port, GTHREAD, 2), tmp_path, port) as server:
        send_concurrently(port, [f"/items/{item_id}" for item_id in range(50)])
        send_concurrently(port, ["/no/such/page/1", "/no/such/page/2"])
        wait_for_total(server, 52)
        routes = label_values(server.scrape(), REQUESTS_TOTAL, "route")
    assert routes == {"/items/<int:item_id>", "<unmatched>"}


@pytest.mark.timeout(60)
def test_health_does_not_reach_the_app_nor_the_metrics(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    calls.touch()
    port = free_port()
    args = gunicorn_args("tests.dataplane.sample_apps:counting_app", port, GTHREAD, 2)
    with herd_server(args, tmp_path, port, COUNTING_APP_FILE=str(calls)) as server:
        for _ in range(20):
            response = get(port, "/healthz")
            assert (response.status, response.body) == (200, b"ok")
        assert calls.read_text() == "", "the health path must not call the app"

        assert get(port, "/work").status == 200
        assert wait_for_total(server, 1) == 1
        samples = server.scrape()
    assert calls.read_text() == "/work\n"
    assert label_values(samples, REQUESTS_TOTAL, "route") == {"<unmatched>"}
    assert not any("healthz" in key for key in samples)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("multiprocess", [False, True], ids=["in-process", "multiprocess-dir"])
def test_plain_uvicorn_serves_metrics_and_health(tmp_path: Path, multiprocess: bool) -> None:
    port = free_port()
    args = ["uvicorn", "--host", LOOPBACK, "--port", str(port), "--no-access-log", FASTAPI_APP]
    with herd_server(args, tmp_path, port, multiprocess=multiprocess) as server:
        send_concurrently(port, [f"/items/{item_id}" for item_id in range(20)])
        assert get(port, "/healthz").body == b"ok"
        assert wait_for_total(server, 20) == 20
        assert label_values(server.scrape(), REQUESTS_TOTAL, "route") == {"/items/{item_id}"}
        assert bool(server.metric_files()) == multiprocess
