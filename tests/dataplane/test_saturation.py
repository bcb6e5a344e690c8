"""Saturation metrics of a real gunicorn: the in-flight gauge is the sum over the live workers
(prometheus_client's `livesum` mode), so it reads what the pod serves now, and a killed worker's
requests leave it; every request carrying X-Request-Start has its queue time counted."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from bench.harness.appservers import (
    FASTAPI_APP,
    FLASK_APP,
    GTHREAD,
    LOOPBACK,
    UVICORN_WORKER,
    HerdServer,
    free_port,
    gunicorn_args,
    herd_server,
    total,
)

IN_FLIGHT = "http_requests_in_flight"
QUEUED = "http_request_queue_seconds_count"
#: More threads per worker than requests: whichever worker accepts them, all run at once
#: (a gthread worker accepts up to worker_connections and queues what its threads cannot take).
WORKERS, THREADS, CONCURRENT = 2, 8, 6


def slow_requests(port: int, count: int, ms: int) -> list[threading.Thread]:
    """`count` concurrent GET /io?ms=`ms`, each stamped as nginx does; a request whose worker is
    killed fails on the client, which is expected here."""

    def one() -> None:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        try:
            connection.request("GET", f"/io?ms={ms}", headers={"X-Request-Start": _stamp()})
            connection.getresponse().read()
        except OSError:
            pass
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _stamp() -> str:
    return f"t={time.time():.3f}"


def wait_for(read: Callable[[], float], expected: float, timeout: float = 10) -> float:
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def in_flight(server: HerdServer) -> float:
    return total(server.scrape(), IN_FLIGHT)


def in_flight_by_worker(server: HerdServer) -> dict[int, float]:
    """Each live worker's own gauge file, as the collector reads it."""
    values = {}
    for path in server.multiproc_dir.glob("gauge_livesum_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        values[pid] = sum(v for _, v, _, _ in MmapedDict.read_all_values_from_file(str(path)))
    return values


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("app", "worker_class"),
    [(FLASK_APP, GTHREAD), (FASTAPI_APP, UVICORN_WORKER)],
    ids=["flask-gthread", "fastapi-uvicorn"],
)
def test_in_flight_is_the_live_workers_sum(tmp_path: Path, app: str, worker_class: str) -> None:
    port = free_port()
    args = gunicorn_args(app, port, worker_class, WORKERS, threads=THREADS)
    with herd_server(args, tmp_path, port) as server:
        assert in_flight(server) == 0

        load = slow_requests(port, CONCURRENT, 2000)
        assert wait_for(lambda: in_flight(server), CONCURRENT) == CONCURRENT
        for thread in load:
            thread.join()
        assert wait_for(lambda: in_flight(server), 0) == 0
        assert total(server.scrape(), QUEUED) == CONCURRENT

        # A worker killed with requests in flight: its share leaves the sum once the arbiter
        # has reaped it (child_exit), the survivors' stays until their requests end.
        load = slow_requests(port, CONCURRENT, 5000)
        assert wait_for(lambda: in_flight(server), CONCURRENT) == CONCURRENT
        busy = {pid: n for pid, n in in_flight_by_worker(server).items() if n > 0}
        victim, lost = next(iter(busy.items()))
        os.kill(victim, signal.SIGKILL)
        left = CONCURRENT - lost
        assert wait_for(lambda: in_flight(server), left, timeout=3) == left
        for thread in load:
            thread.join()
        assert wait_for(lambda: in_flight(server), 0) == 0
