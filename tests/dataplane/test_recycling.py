"""uvicorn workers recycled at max_requests under load without a failed request, and the
operator's rendered ASGI command line still starting under a runtime older than that."""

from __future__ import annotations

import http.client
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.harness.appservers import (
    FASTAPI_APP,
    LOOPBACK,
    UVICORN_WORKER,
    Process,
    free_port,
    get,
    gunicorn_args,
    herd_env,
    herd_server,
    send_concurrently,
    start_process,
)
from herd.model import parse
from herd.serving.tuning import resolve
from herd.serving.workload import server_args

REQUESTS = 600
WORKERS = 2
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


def booted_pids(log: str) -> list[str]:
    return BOOTED.findall(log)


def send_on_kept_alive_connections(
    port: int, requests: int, clients: int = 4
) -> tuple[Counter[int], int]:
    """Each client sends its share on one connection, opening a new one only when a response
    said `Connection: close`. Any client error fails the test. Returns the statuses and the
    connections the server closed that way."""
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    closed = [0]
    lock = threading.Lock()

    def client(count: int) -> None:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        try:
            for _ in range(count):
                connection.request("GET", "/io?ms=2")
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
                if response.will_close:
                    connection.close()
                    with lock:
                        closed[0] += 1
        except OSError as error:
            with lock:
                errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(requests // clients,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, f"{len(errors)} clients failed: {errors[:5]}"
    return statuses, closed[0]


@pytest.mark.timeout(90)
def test_uvicorn_workers_recycle_without_a_reset_on_fresh_connections(tmp_path: Path) -> None:
    port = free_port()
    args = gunicorn_args(
        FASTAPI_APP, port, UVICORN_WORKER, WORKERS, max_requests=50, max_requests_jitter=10
    )
    with herd_server(args, tmp_path, port) as server:
        paths = [("/", "/io?ms=2", "/items/7")[i % 3] for i in range(REQUESTS)]
        load = send_concurrently(port, paths, attempts=1)
        log = server.process.log()
    assert load.statuses == {200: REQUESTS}
    assert load.resets == 0, f"{load.resets} connections reset"
    assert "RecyclingUvicornWorker" in log
    # Each worker leaves after 50 to 60 requests: new pids, many times over.
    assert len(set(booted_pids(log))) >= WORKERS + 3, log


@pytest.mark.timeout(90)
def test_uvicorn_workers_recycle_without_an_error_on_kept_alive_connections(
    tmp_path: Path,
) -> None:
    port = free_port()
    args = gunicorn_args(
        FASTAPI_APP, port, UVICORN_WORKER, WORKERS, max_requests=50, max_requests_jitter=10
    )
    with herd_server(args, tmp_path, port) as server:
        statuses, closed = send_on_kept_alive_connections(port, REQUESTS)
        log = server.process.log()
    assert statuses == {200: REQUESTS}
    assert closed >= 3, "a draining worker answers with Connection: close"
    assert len(set(booted_pids(log))) >= WORKERS + 3, log


def rendered_asgi_args(port: int) -> list[str]:
    """What the operator renders for an ASGI WebService with its default maxRequests, bound to
    loopback."""
    ws = parse(
        {
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {"image": "shop:1", "app": FASTAPI_APP, "interface": "asgi", "port": port},
        }
    )
    args = server_args(ws, resolve(ws.interface, ws.server, ws.resources))
    args[args.index("--bind") + 1] = f"{LOOPBACK}:{port}"
    return args


def wait_serving(process: Process, port: int, timeout: float = 30) -> None:
    """Until the server answers a request of the app (not only the health path), or fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.popen.poll() is None, process.log()
        try:
            if get(port, "/items/3").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"not serving after {timeout}s:\n{process.log()}")


@pytest.mark.timeout(60)
def test_rendered_asgi_args_start_under_a_runtime_without_the_recycling_worker(
    tmp_path: Path,
) -> None:
    """An image's own herd-runtime may predate herd_runtime.recycling: it checks the rendered
    arguments and execs them unchanged. The worker class rendered must load without it."""
    port = free_port()
    args = rendered_asgi_args(port)
    assert args[args.index("--worker-class") + 1] == UVICORN_WORKER
    # No automatic limit for it (herd.serving.tuning): uvicorn's own would drop connections.
    assert args[args.index("--max-requests") + 1] == "0"
    multiproc_dir = tmp_path / "metrics"
    multiproc_dir.mkdir()
    env = herd_env(multiproc_dir, free_port())
    process = start_process([sys.executable, "-m", *args], tmp_path / "old.log", env=env)
    try:
        wait_serving(process, port)
    finally:
        process.stop()
    assert f"Using worker: {UVICORN_WORKER}" in process.log()


@pytest.mark.timeout(60)
def test_the_injected_runtimes_entry_point_runs_the_recycling_worker(tmp_path: Path) -> None:
    """runtime: inject starts `python3 -m herd_runtime ARGS` (herd.serving.workload)."""
    port = free_port()
    multiproc_dir = tmp_path / "metrics"
    multiproc_dir.mkdir()
    command = [sys.executable, "-m", "herd_runtime", *rendered_asgi_args(port)]
    process = start_process(
        command, tmp_path / "inject.log", env=herd_env(multiproc_dir, free_port())
    )
    try:
        wait_serving(process, port)
    finally:
        process.stop()
    assert "Using worker: herd_runtime.recycling.RecyclingUvicornWorker" in process.log()
