"""Recycling uvicorn workers: when a worker drains and exits, its responses while draining, the
jittered limit it drains at, and herd-serve's substitution of the worker class."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.config import Config

from herd_runtime.recycling import (
    DRAIN_SECONDS,
    RecyclingUvicornWorker,
    closing_while,
    recycle_step,
)
from herd_runtime.workers import (
    RECYCLING_WORKER,
    UVICORN_WORKER,
    interface_of_worker,
    load_worker_class,
    with_recycling_worker,
)

LIMIT = 50
STARTED = 100.0


@pytest.mark.parametrize(
    ("requests", "drain_started", "connections", "now", "step"),
    [
        (0, None, 3, STARTED, "serve"),
        (LIMIT - 1, None, 3, STARTED, "serve"),
        (LIMIT, None, 3, STARTED, "drain"),
        (
            LIMIT + 7,
            None,
            0,
            STARTED,
            "drain",
        ),  # uvicorn ticks every 100 ms: a busy worker overshoots
        (LIMIT + 1, STARTED, 2, STARTED + DRAIN_SECONDS / 2, "serve"),
        (LIMIT + 1, STARTED, 0, STARTED + 0.1, "exit"),
        (LIMIT + 1, STARTED, 2, STARTED + DRAIN_SECONDS, "exit"),
    ],
)
def test_recycle_step(requests, drain_started, connections, now, step):
    assert recycle_step(requests, LIMIT, drain_started, connections, now) == step


def test_a_worker_without_a_limit_never_drains():
    assert recycle_step(10**9, sys.maxsize, None, 1, STARTED) == "serve"


async def _response_headers(app: Any) -> list[tuple[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/"}, receive, send)
    return list(sent[0]["headers"])


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"hi"})


@pytest.mark.parametrize(
    ("draining", "headers"),
    [
        (False, [(b"x-app", b"1")]),
        (True, [(b"x-app", b"1"), (b"connection", b"close")]),
    ],
)
def test_responses_close_their_connection_only_while_draining(draining, headers):
    app = closing_while(lambda: draining, _hello)
    assert asyncio.run(_response_headers(app)) == headers


def _worker(max_requests: int, jitter: int) -> RecyclingUvicornWorker:
    cfg = Config()
    cfg.set("max_requests", max_requests)
    cfg.set("max_requests_jitter", jitter)
    log = SimpleNamespace(
        error_log=SimpleNamespace(handlers=[], level=0),
        access_log=SimpleNamespace(handlers=[], level=0),
    )
    return RecyclingUvicornWorker(0, 0, [], None, 30, cfg, log)


@pytest.mark.parametrize(("max_requests", "jitter"), [(50, 10), (5000, 500), (7, 0)])
def test_each_worker_drains_at_its_own_limit_within_the_jitter(max_requests, jitter):
    limits = {_worker(max_requests, jitter).max_requests for _ in range(200)}
    assert min(limits) >= max_requests and max(limits) <= max_requests + jitter
    assert len(limits) > 1 or jitter == 0, "the jitter spreads the workers' limits"


def test_uvicorns_own_limit_is_off():
    # It would exit at the limit without draining: DrainingServer keeps the limit instead.
    assert _worker(50, 10).config.limit_max_requests is None


def test_without_max_requests_a_worker_has_no_limit():
    assert _worker(0, 0).max_requests == sys.maxsize


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--worker-class", UVICORN_WORKER, "app:app"],
            ["--worker-class", RECYCLING_WORKER, "app:app"],
        ),
        (["-k", UVICORN_WORKER, "app:app"], ["-k", RECYCLING_WORKER, "app:app"]),
        ([f"--worker-class={UVICORN_WORKER}"], [f"--worker-class={RECYCLING_WORKER}"]),
        ([f"-k{UVICORN_WORKER}"], [f"-k{RECYCLING_WORKER}"]),
        (["--worker-class", "gthread", "app:app"], ["--worker-class", "gthread", "app:app"]),
        (["-k", "uvicorn_worker.UvicornH11Worker"], ["-k", "uvicorn_worker.UvicornH11Worker"]),
        # The class name as anything but a worker-class value stays.
        (["--name", UVICORN_WORKER, "app:app"], ["--name", UVICORN_WORKER, "app:app"]),
        ([UVICORN_WORKER], [UVICORN_WORKER]),
    ],
)
def test_herd_serve_runs_the_recycling_worker_for_uvicorns(argv, expected):
    assert with_recycling_worker(argv) == expected


def test_the_recycling_worker_loads_and_serves_asgi():
    worker_class = load_worker_class(RECYCLING_WORKER)
    assert worker_class is RecyclingUvicornWorker
    assert interface_of_worker(worker_class) == "asgi"
