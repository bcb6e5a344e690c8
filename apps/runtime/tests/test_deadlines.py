"""Request deadlines in-process: the pure decisions, the thread monitor on a socket pair, and the
ASGI middleware's cancellation."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest
from gunicorn.workers.base_async import AsyncWorker
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker
from prometheus_client import REGISTRY
from uvicorn_worker import UvicornWorker

from herd_runtime.deadlines import (
    MAX_WAKEUP_SECONDS,
    RequestTimeout,
    ThreadDeadlines,
    Watch,
    deadline_seconds,
    due,
    expiry_outcome,
    next_wakeup,
    watchable,
)
from herd_runtime.middleware import instrument
from herd_runtime.workers import deadline_kind, reports_heartbeat_per_request

LOG = logging.getLogger("test")


@pytest.mark.parametrize(("timeout", "deadline"), [(30, 30.0), (1, 1.0), (0, None)])
def test_gunicorn_timeout_zero_means_no_deadline(timeout: int, deadline: float | None) -> None:
    assert deadline_seconds(timeout) == deadline


@pytest.mark.parametrize(("started", "outcome"), [(False, "504"), (True, "closed")])
def test_a_504_only_before_the_response_started(started: bool, outcome: str) -> None:
    assert expiry_outcome(started) == outcome


WATCHABLE = {
    "HTTP/1.1": ({"SERVER_PROTOCOL": "HTTP/1.1"}, True),
    "HTTP/1.0": ({"SERVER_PROTOCOL": "HTTP/1.0"}, True),
    "an HTTP/2 stream": ({"SERVER_PROTOCOL": "HTTP/2.0", "HTTP_VERSION": "2"}, False),
    "no protocol": ({}, False),
}


@pytest.mark.parametrize(("environ", "watched"), WATCHABLE.values(), ids=WATCHABLE.keys())
def test_only_http1_requests_own_their_socket(environ: dict[str, str], watched: bool) -> None:
    assert watchable(environ) is watched


DUE = {
    "within its deadline": (Watch(deadline=10, expired_at=None), 9.9, "wait"),
    "at its deadline": (Watch(deadline=10, expired_at=None), 10, "expire"),
    "past its deadline": (Watch(deadline=10, expired_at=None), 12, "expire"),
    "expired, within the graceful timeout": (Watch(deadline=10, expired_at=10.1), 12, "wait"),
    "expired, past the graceful timeout": (Watch(deadline=10, expired_at=10.1), 13.1, "recycle"),
    "complete, past its deadline": (Watch(deadline=10, expired_at=None, complete=True), 12, "wait"),
}


@pytest.mark.parametrize(("watch", "now", "action"), DUE.values(), ids=DUE.keys())
def test_what_is_due(watch: Watch, now: float, action: str) -> None:
    assert due(watch, now, graceful_timeout=3) == action


WAKEUPS = {
    "nothing in flight": ([], False, MAX_WAKEUP_SECONDS),
    "the nearest deadline": ([Watch(10.2, None), Watch(10.1, None)], False, 0.1),
    "a deadline already due": ([Watch(9, None)], False, 0.0),
    "the end of a graceful timeout": ([Watch(9, 9.0), Watch(20, None)], False, 0.5),
    "far deadlines": ([Watch(30, None)], False, MAX_WAKEUP_SECONDS),
    "a complete response is due for nothing": ([Watch(9, None, True)], False, MAX_WAKEUP_SECONDS),
    "recycling: a stuck request is due for nothing": ([Watch(5, 5.0)], True, MAX_WAKEUP_SECONDS),
}


@pytest.mark.parametrize(("watches", "recycling", "seconds"), WAKEUPS.values(), ids=WAKEUPS.keys())
def test_next_wakeup(watches: list[Watch], recycling: bool, seconds: float) -> None:
    assert next_wakeup(watches, now=10, graceful_timeout=2, recycling=recycling) == pytest.approx(
        seconds
    )


KINDS = {
    "sync": (SyncWorker, "threads", True),
    "gthread": (ThreadWorker, "threads", False),
    "uvicorn": (UvicornWorker, "asyncio", False),
    "gevent and eventlet (AsyncWorker)": (AsyncWorker, "heartbeat", False),
}


@pytest.mark.parametrize(("worker_class", "kind", "per_request"), KINDS.values(), ids=KINDS.keys())
def test_deadline_kind_of_worker_classes(worker_class: type, kind: str, per_request: bool) -> None:
    assert deadline_kind(worker_class) == kind
    assert reports_heartbeat_per_request(worker_class) is per_request


def timeouts_counted(route: str, response: str) -> float:
    labels = {"method": "GET", "route": route, "response": response}
    return REGISTRY.get_sample_value("http_request_timeouts_total", labels) or 0.0


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def serve_wsgi(app: Any, path: str, timeout: float) -> tuple[bytes, list[str]]:
    """Drives the wrapped app in a thread as gunicorn does, the server's end of a socket pair
    as `gunicorn.socket`; returns what the client end received and what the thread saw."""
    server_end, client_end = socket.socketpair()
    deadlines = ThreadDeadlines(timeout, graceful_timeout=30, log=LOG)
    wrapped = instrument(app, "wsgi", "/healthz", thread_deadlines=deadlines)
    seen: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(status)
        return lambda data: None

    def handle() -> None:
        environ = {
            "PATH_INFO": path,
            "REQUEST_METHOD": "GET",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "gunicorn.socket": server_end,
            "herd.route": path,
        }
        try:
            body = wrapped(environ, start_response)
            for chunk in body:
                try:
                    server_end.sendall(chunk)
                except OSError:
                    seen.append("EPIPE")
                    break
            if hasattr(body, "close"):
                body.close()
            spin(0.05)  # an interruption left pending would strike here
        except BaseException as error:  # noqa: BLE001 (what leaked is the result)
            seen.append(f"leaked {type(error).__name__}")
        finally:
            server_end.close()

    thread = threading.Thread(target=handle)
    thread.start()
    thread.join(timeout + 5)
    assert not thread.is_alive()
    client_end.settimeout(2)
    received = b"".join(iter(lambda: client_end.recv(4096), b""))
    return received, seen


INTERRUPTED: list[str] = []


def spinning_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    try:
        spin(5)
    except RequestTimeout:
        INTERRUPTED.append(environ["PATH_INFO"])
        raise
    start_response("200 OK", [])
    return [b"late"]


def test_a_spinning_wsgi_request_gets_a_504_and_is_interrupted() -> None:
    before = timeouts_counted("/spin", "504")
    started = time.monotonic()
    received, seen = serve_wsgi(spinning_app, "/spin", timeout=0.3)
    assert received.startswith(b"HTTP/1.1 504 Gateway Timeout\r\n"), received
    assert time.monotonic() - started < 1.5
    # The middleware answered gunicorn too (its access log), and nothing leaked afterwards.
    assert seen[0] == "504 Gateway Timeout"
    assert not [s for s in seen if s.startswith("leaked")], seen
    assert INTERRUPTED == ["/spin"]
    # The monitor thread counts the request after the 504 is on the wire.
    deadline = time.monotonic() + 2
    while timeouts_counted("/spin", "504") == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert timeouts_counted("/spin", "504") == before + 1


def sleeping_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    time.sleep(0.6)  # in C: the interruption is delivered only once it returns, on the way out
    return [b"late"]


def test_an_interruption_arriving_after_the_app_returned_does_not_leak() -> None:
    received, seen = serve_wsgi(sleeping_app, "/sleeping", timeout=0.2)
    assert received.startswith(b"HTTP/1.1 504 Gateway Timeout\r\n"), received
    assert not [s for s in seen if s.startswith("leaked")], seen


def streaming_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    yield b"first"
    spin(5)
    yield b"never"


def test_a_wsgi_response_already_started_is_cut_off() -> None:
    before = timeouts_counted("/stream", "closed")
    received, seen = serve_wsgi(streaming_app, "/stream", timeout=0.3)
    assert received == b"first"
    assert seen == ["200 OK"]
    assert timeouts_counted("/stream", "closed") == before + 1


def quick_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"quick"]


def test_a_request_within_its_deadline_is_untouched() -> None:
    received, seen = serve_wsgi(quick_app, "/quick", timeout=0.3)
    assert received == b"quick"
    assert seen == ["200 OK"]


async def asgi_call(app: Any, path: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "herd.route": path}
    await app(scope, receive, send)
    return messages


def test_an_asgi_request_past_its_deadline_is_cancelled_and_gets_a_504() -> None:
    cancelled = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(scope["path"])
            raise

    before = timeouts_counted("/asgi-slow", "504")
    wrapped = instrument(app, "asgi", "/healthz", timeout=0.2)
    messages = asyncio.run(asyncio.wait_for(asgi_call(wrapped, "/asgi-slow"), 2))
    assert cancelled == ["/asgi-slow"]
    assert messages[0]["status"] == 504
    assert timeouts_counted("/asgi-slow", "504") == before + 1


def test_an_asgi_response_already_started_is_left_incomplete() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.sleep(5)

    before = timeouts_counted("/asgi-stream", "closed")
    wrapped = instrument(app, "asgi", "/healthz", timeout=0.2)
    messages = asyncio.run(asyncio.wait_for(asgi_call(wrapped, "/asgi-stream"), 2))
    # No second start, no final body: the server closes the connection.
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert messages[-1]["more_body"] is True
    assert timeouts_counted("/asgi-stream", "closed") == before + 1


def test_work_after_a_complete_asgi_response_has_no_deadline() -> None:
    """Starlette's background tasks run in the app's call, after the response."""
    finished = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await asyncio.sleep(0.4)
        finished.append(scope["path"])

    before = timeouts_counted("/background", "closed")
    wrapped = instrument(app, "asgi", "/healthz", timeout=0.2)
    messages = asyncio.run(asyncio.wait_for(asgi_call(wrapped, "/background"), 2))
    assert [m.get("status") for m in messages] == [200, None]
    assert finished == ["/background"]
    assert timeouts_counted("/background", "closed") == before


def closing_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A body whose close runs past the deadline, after the whole response."""

    class Body:
        def __iter__(self) -> Any:
            return iter([b"whole"])

        def close(self) -> None:
            spin(0.5)

    start_response("200 OK", [])
    return Body()


def test_work_after_a_complete_wsgi_response_has_no_deadline() -> None:
    before = timeouts_counted("/closing", "closed")
    received, seen = serve_wsgi(closing_app, "/closing", timeout=0.2)
    assert received == b"whole"
    assert seen == ["200 OK"]
    assert timeouts_counted("/closing", "closed") == before


def test_the_apps_own_timeout_error_is_not_a_deadline() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise TimeoutError("the app's database")

    wrapped = instrument(app, "asgi", "/healthz", timeout=5)
    with pytest.raises(TimeoutError, match="database"):
        asyncio.run(asgi_call(wrapped, "/own-timeout"))
