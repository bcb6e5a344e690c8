"""Request deadlines on real gunicorn workers (sync, gthread, uvicorn) with `--timeout 2`: a
request past it gets a 504, or its connection closed once the response started; the app's code
is interrupted; the worker goes on serving; a thread stuck in C gets its worker recycled."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from bench.harness.appservers import (
    GTHREAD,
    LOOPBACK,
    UVICORN_WORKER,
    HerdServer,
    free_port,
    get,
    gunicorn_args,
    herd_server,
)

TIMEOUT = 2
GRACEFUL = 1
#: How late past the deadline the client may get its answer: the monitor wakes at the
#: deadline; this is scheduling slack on a busy 2-core machine.
MARGIN = 0.5
WSGI_APP = "tests.dataplane.sample_apps:deadline_wsgi"
ASGI_APP = "tests.dataplane.sample_apps:deadline_asgi"
WORKERS = {
    "sync": ("sync", WSGI_APP, "RequestTimeout"),
    "gthread": (GTHREAD, WSGI_APP, "RequestTimeout"),
    "uvicorn": (UVICORN_WORKER, ASGI_APP, "CancelledError"),
}


def serve(tmp_path: Path, worker_class: str, app: str) -> AbstractContextManager[HerdServer]:
    port = free_port()
    args = gunicorn_args(
        app, port, worker_class, workers=1, timeout=TIMEOUT, graceful_timeout=GRACEFUL
    )
    return herd_server(args, tmp_path, port, DEADLINE_APP_FILE=str(tmp_path / "events"))


def timed(request: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = request()
    return result, time.monotonic() - started


def read_stream(port: int, path: str) -> tuple[int, bytes, str]:
    """Status, the body bytes received, and how reading it ended."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        try:
            return response.status, response.read(), "complete"
        except http.client.IncompleteRead as cut:
            return response.status, cut.partial, "incomplete"
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], seconds: float, what: str, server: HerdServer) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}\n{server.tail()}")
        time.sleep(0.1)


def events(tmp_path: Path) -> list[str]:
    path = tmp_path / "events"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("worker_class", "app", "interruption"), WORKERS.values(), ids=WORKERS)
def test_a_request_past_its_deadline_is_answered_counted_interrupted_and_the_worker_goes_on(
    tmp_path: Path, worker_class: str, app: str, interruption: str, record_property
) -> None:
    with serve(tmp_path, worker_class, app) as server:
        pid = get(server.port, "/pid").body

        response, seconds_to_504 = timed(lambda: get(server.port, "/spin"))
        assert response.status == 504, response
        assert TIMEOUT <= seconds_to_504 < TIMEOUT + MARGIN

        stream, seconds_to_close = timed(lambda: read_stream(server.port, "/stream"))
        assert stream == (200, b"first chunk\n", "incomplete")
        assert TIMEOUT <= seconds_to_close < TIMEOUT + MARGIN

        # The app's code saw the interruption, and the same worker answers the next request.
        wait_for(
            lambda: events(tmp_path) == [f"/spin {interruption}", f"/stream {interruption}"],
            3,
            "both requests interrupted",
            server,
        )
        assert get(server.port, "/pid").body == pid
        samples = server.scrape()
    record_property("seconds_to_504", round(seconds_to_504, 3))
    record_property("seconds_to_close", round(seconds_to_close, 3))
    print(f"{worker_class}: 504 after {seconds_to_504:.3f} s, cut after {seconds_to_close:.3f} s")

    timeouts = "http_request_timeouts_total"
    assert samples[f'{timeouts}{{method="GET",response="504",route="/spin"}}'] == 1
    assert samples[f'{timeouts}{{method="GET",response="closed",route="/stream"}}'] == 1
    assert samples['http_requests_total{code="504",method="GET",route="/spin"}'] == 1
    assert samples['http_requests_total{code="200",method="GET",route="/stream"}'] == 1
    assert not [key for key in samples if key.startswith("herd_worker_recycles_total{")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_class", ["sync", GTHREAD])
def test_a_thread_stuck_in_c_past_the_graceful_timeout_recycles_its_worker(
    tmp_path: Path, worker_class: str, record_property
) -> None:
    with serve(tmp_path, worker_class, WSGI_APP) as server:
        pid = get(server.port, "/pid").body

        response, seconds_to_504 = timed(lambda: get(server.port, "/sleep"))  # time.sleep(30)
        assert response.status == 504, response
        assert TIMEOUT <= seconds_to_504 < TIMEOUT + MARGIN
        if worker_class == GTHREAD:
            # Its other threads serve on until the worker is recycled.
            assert get(server.port, "/pid").body == pid

        started = time.monotonic()
        wait_for(lambda: get(server.port, "/pid").body != pid, 10, "a new worker", server)
        seconds_to_new_worker = time.monotonic() - started + seconds_to_504
        samples = server.scrape()
        log = server.process.log()
    record_property("seconds_to_new_worker", round(seconds_to_new_worker, 2))
    print(f"{worker_class}: a new worker {seconds_to_new_worker:.2f} s after the request")

    assert samples['herd_worker_recycles_total{reason="stuck_request"}'] == 1
    assert samples['http_request_timeouts_total{method="GET",response="504",route="/sleep"}'] == 1
    assert "still stuck" in log
    # The worker recycled itself: gunicorn's heartbeat never had to kill it.
    assert "WORKER TIMEOUT" not in log
    assert events(tmp_path) == []  # time.sleep never returned to be interrupted
