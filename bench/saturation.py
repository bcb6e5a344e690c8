"""bench/saturation: what the saturation signals read on one real pod, gthread 1 worker x 4
threads (capacity 4), under N clients each holding a slow request open (/io?ms=500), every
request stamped with X-Request-Start as nginx does.

For each N: Little's law over the run (the autoscaler's stable signal: the increase of
http_request_duration_seconds_sum per second), the in-flight gauge's mean over 10 Hz scrapes
(the panic signal's source), and the mean queue time from the header. Past the capacity the
first two stop at 4 (a request counts only once a thread runs it) and the queue time grows:
that is why the autoscaler panics at a utilization of 1.0, not above it.

    .venv/bin/python -m bench.saturation [--seconds 8]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.harness.appservers import (
    FLASK_APP,
    GTHREAD,
    LOOPBACK,
    HerdServer,
    free_port,
    gunicorn_args,
    herd_server,
    total,
)
from bench.markdown import table

THREADS = 4
REQUEST_MS = 500
CLIENTS = (1, 2, 3, 4, 6, 8)


def hold_requests(port: int, clients: int, until: float) -> None:
    def client() -> None:
        while time.monotonic() < until:
            connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
            try:
                stamp = {"X-Request-Start": f"t={time.time():.3f}"}
                connection.request("GET", f"/io?ms={REQUEST_MS}", headers=stamp)
                connection.getresponse().read()
            finally:
                connection.close()

    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def measure(server: HerdServer, clients: int, seconds: float) -> list[str]:
    before, started = server.scrape(), time.monotonic()
    load = threading.Thread(target=hold_requests, args=(server.port, clients, started + seconds))
    load.start()
    gauge = []
    while load.is_alive():
        gauge.append(total(server.scrape(), "http_requests_in_flight"))
        time.sleep(0.1)
    after, elapsed = server.scrape(), time.monotonic() - started

    def increase(name: str) -> float:
        return total(after, name) - total(before, name)

    in_service = increase("http_request_duration_seconds_sum") / elapsed
    queued = increase("http_request_queue_seconds_count")
    queue_ms = 1000 * increase("http_request_queue_seconds_sum") / queued if queued else 0.0
    return [
        str(clients),
        f"{in_service:.2f}",
        f"{in_service / THREADS:.2f}",
        f"{statistics.mean(gauge):.2f}",
        f"{queue_ms:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    options = parser.parse_args()
    port = free_port()
    args = gunicorn_args(FLASK_APP, port, GTHREAD, 1, threads=THREADS)
    with tempfile.TemporaryDirectory() as workdir, herd_server(args, Path(workdir), port) as server:
        rows = [measure(server, clients, options.seconds) for clients in CLIENTS]
    header = (
        "clients",
        "in service (Little's law)",
        f"utilization of {THREADS}",
        "in-flight gauge, mean",
        "queue ms, mean",
    )
    print("\n".join(table(header, rows, "rrrrr")))


if __name__ == "__main__":
    main()
