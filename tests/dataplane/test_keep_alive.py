"""gunicorn's keep-alive against nginx's idle upstream connections (ingress-nginx keeps them
60 s). Bursts of requests after idle gaps of about 2 s make nginx reuse connections the moment
gunicorn's default 2 s keep-alive closes them: the client gets a 502. Herd's 75 s
keep-alive outlives nginx's 60 s, so nginx always closes first."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.harness.appservers import (
    FASTAPI_APP,
    FLASK_APP,
    GTHREAD,
    UVICORN_WORKER,
    Pods,
    get,
    gunicorn_args,
)
from bench.harness.nginx_wrk import Nginx

GUNICORN_DEFAULT_KEEP_ALIVE = 2
HERD_KEEP_ALIVE = 75
BURST = 16
#: Idle gaps between bursts, swept in 2 ms steps across the moment a 2 s keep-alive expires
#: (the server's timer starts a little before the client's, when the response is sent).
GAPS = [1.99 + 0.002 * step for step in range(8)]


def bursts_after_idle_gaps(port: int) -> dict[str, Counter[int]]:
    """BURST clients send together, all wait the same gap, and again (about 16 s in all).
    Half of them POST: nginx may resend a failed GET on another connection, never a POST
    it already sent."""
    statuses: dict[str, Counter[int]] = {"GET": Counter(), "POST": Counter()}
    lock = threading.Lock()
    start_together = threading.Barrier(BURST, timeout=30)

    def client(index: int) -> None:
        method = ("GET", "POST")[index % 2]
        for gap in GAPS:
            start_together.wait()
            try:
                status = get(port, "/io?ms=1", method=method).status
            except OSError:
                status = 0
            with lock:
                statuses[method][status] += 1
            time.sleep(gap)

    clients = [threading.Thread(target=client, args=(i,)) for i in range(BURST)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    return statuses


def run_bursts(
    tmp_path: Path, nginx: Nginx, app: str, worker_class: str, keep_alive: int
) -> dict[str, Counter[int]]:
    pods = Pods(
        tmp_path, lambda port: gunicorn_args(app, port, worker_class, 2, keep_alive=keep_alive)
    )
    try:
        nginx.start(pods.ports)
        return bursts_after_idle_gaps(nginx.port)
    finally:
        pods.stop_all()


def report(record_property, label: str, statuses: dict[str, Counter[int]]) -> None:
    for method, counts in statuses.items():
        record_property(f"{method.lower()}_requests", sum(counts.values()))
        record_property(f"{method.lower()}_502", counts[502])
    print(f"{label}: { ({method: dict(counts) for method, counts in statuses.items()}) }")


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("app", "worker_class"),
    [(FLASK_APP, GTHREAD), (FASTAPI_APP, UVICORN_WORKER)],
    ids=["flask-gthread", "fastapi-uvicorn"],
)
def test_default_keep_alive_gives_502s_behind_nginx(
    tmp_path: Path, nginx: Nginx, record_property, app: str, worker_class: str
) -> None:
    """Reported, not asserted: how many requests lose the race depends on timing."""
    statuses = run_bursts(tmp_path, nginx, app, worker_class, GUNICORN_DEFAULT_KEEP_ALIVE)
    report(record_property, f"keep-alive {GUNICORN_DEFAULT_KEEP_ALIVE}s {worker_class}", statuses)
    assert sum(statuses["GET"].values()) == sum(statuses["POST"].values()) == BURST // 2 * len(GAPS)


@pytest.mark.timeout(90)
def test_herd_keep_alive_gives_no_502s_behind_nginx(
    tmp_path: Path, nginx: Nginx, record_property
) -> None:
    statuses = run_bursts(tmp_path, nginx, FLASK_APP, GTHREAD, HERD_KEEP_ALIVE)
    report(record_property, f"keep-alive {HERD_KEEP_ALIVE}s {GTHREAD}", statuses)
    assert statuses == {"GET": {200: BURST // 2 * len(GAPS)}, "POST": {200: BURST // 2 * len(GAPS)}}
