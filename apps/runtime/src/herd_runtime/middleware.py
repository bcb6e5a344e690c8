"""WSGI and ASGI middleware: answers the health path itself, records the HTTP metrics of
every other request once, when its response is finished, counts it in flight from its start to
then (with the time it queued before it, from `X-Request-Start`), and enforces request
deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from uvicorn.middleware.asgi2 import ASGI2Middleware

from herd_runtime import http_metrics, request_start, routes
from herd_runtime.appload import Interface, speaks_asgi3
from herd_runtime.deadlines import (
    TIMEOUT_BODY,
    TIMEOUT_HEADERS,
    TIMEOUT_STATUS,
    Expiry,
    RequestTimeout,
    ThreadDeadlines,
    TrackedRequest,
    expiry_outcome,
    report_expiry,
    watchable,
)

HEALTH_BODY = b"ok"
_HEALTH_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(HEALTH_BODY))),
    ("Cache-Control", "no-store"),
]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
AsgiApp = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Any]


def instrument(
    app: Any,
    interface: Interface,
    health_path: str,
    *,
    timeout: float | None = None,
    thread_deadlines: ThreadDeadlines | None = None,
    log: logging.Logger | None = None,
) -> Any:
    """Wraps the app for the interface its server speaks. An ASGI request is cancelled
    `timeout` seconds after it started; WSGI requests are watched by `thread_deadlines`."""
    routes.install_adapters(app)
    # Made once here, in the serving process before its first request: request threads
    # making them at once would both register them, and one would fail its request.
    http_metrics.in_flight()
    http_metrics.queue()
    if interface == "asgi":
        asgi3 = app if speaks_asgi3(app) else ASGI2Middleware(app)
        return AsgiMiddleware(asgi3, health_path, timeout, log or logging.getLogger("herd"))
    return WsgiMiddleware(app, health_path, thread_deadlines)


class WsgiMiddleware:
    def __init__(
        self, app: WsgiApp, health_path: str, deadlines: ThreadDeadlines | None = None
    ) -> None:
        self.app = app
        self.health_path = health_path
        self.deadlines = deadlines

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.health_path:
            # Liveness of this process only: no routing, no app code, no logging, no metrics.
            start_response("200 OK", _HEALTH_HEADERS)
            return [HEALTH_BODY]
        _begin(environ.get(request_start.WSGI_KEY))
        if self.deadlines is not None and watchable(environ):
            return self._call_with_deadline(environ, start_response, self.deadlines)
        started = time.perf_counter()
        status = ["500"]  # what the server answers if the app fails before starting a response

        def recording_start_response(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            http_metrics.in_flight().dec()
            _observe_wsgi(environ, status[0], time.perf_counter() - started)

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            finish()
            raise
        return _ObservedBody(body, finish)

    def _call_with_deadline(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        deadlines: ThreadDeadlines,
    ) -> Iterable[bytes]:
        """As above, each call into the app's code interruptible by the deadline monitor."""
        request = deadlines.track(environ)

        def recording_start_response(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            request.status = status_line[:3]
            write = start_response(status_line, headers, exc_info)

            def gated_write(data: bytes) -> None:
                request.hand_over()  # past the deadline the socket is shut: the write fails
                write(data)

            return gated_write

        def finish() -> None:
            # In flight until its thread lets go, past its deadline too: the thread is busy.
            http_metrics.in_flight().dec()
            if deadlines.finish(request):  # else the monitor counted it at its deadline
                _observe_wsgi(environ, request.status, time.monotonic() - request.started)

        try:
            body = request.run(self.app, environ, recording_start_response)
        except RequestTimeout:
            # The client has its 504 already and the socket is shut: gunicorn's attempt to
            # send this one fails quietly (EPIPE), and its access log says 504.
            finish()
            start_response(TIMEOUT_STATUS, TIMEOUT_HEADERS, sys.exc_info())
            return [TIMEOUT_BODY]
        except BaseException:
            finish()
            raise
        return _ObservedBody(body, finish, request)


def _begin(request_start_header: str | None) -> None:
    """A request the app starts now: in flight until it finishes, after waiting this long."""
    http_metrics.in_flight().inc()
    http_metrics.observe_queue(request_start.queue_seconds(request_start_header, time.time()))


def _observe_wsgi(environ: dict[str, Any], code: str, seconds: float) -> None:
    route = routes.wsgi_route(environ)
    http_metrics.observe(environ.get("REQUEST_METHOD", ""), code, route, seconds)


class _ObservedBody:
    """The app's response body; the request counts when the server closes it, which every WSGI
    server does exactly once, after the last byte or on an error."""

    def __init__(
        self,
        body: Iterable[bytes],
        on_close: Callable[[], None],
        request: TrackedRequest | None = None,
    ) -> None:
        self._body = body
        self._on_close = on_close
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        if self._request is None:
            return iter(self._body)
        return self._gated(self._request)

    def _gated(self, request: TrackedRequest) -> Iterator[bytes]:
        """The body's chunks, produced by the app's code under the deadline; gunicorn sends
        the status line with the first chunk, or at the end of an empty body, so the response
        is handed over before either."""
        try:
            chunks = request.run(iter, self._body)
            while (chunk := request.run(next, chunks, None)) is not None:
                if not request.hand_over():
                    return
                yield chunk
        except RequestTimeout:
            return  # the socket is shut: the client sees the connection closed
        request.hand_over(complete=True)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                if self._request is None:
                    close()
                else:
                    # Interrupted while closing, past its deadline: nothing is left to undo.
                    with contextlib.suppress(RequestTimeout):
                        self._request.run(close)
        finally:
            self._on_close()


class AsgiMiddleware:
    def __init__(
        self,
        app: AsgiApp,
        health_path: str,
        timeout: float | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.health_path = health_path
        self.timeout = timeout
        self.log = log or logging.getLogger("herd")

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":  # lifespan and websockets pass through untouched
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.health_path:
            await _send_health(send)
            return
        _begin(request_start.asgi_header(scope.get("headers", [])))
        try:
            await self._serve(scope, receive, send)
        finally:
            http_metrics.in_flight().dec()

    async def _serve(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response
        response_started = False

        # The app runs in this task: at the deadline asyncio cancels it, so the app sees
        # CancelledError at the await it is in, and its cleanup runs.
        deadline = asyncio.timeout(self.timeout)

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
            await send(message)
            complete = message["type"] == "http.response.body" and not message.get("more_body")
            if complete and not deadline.expired():
                # What the app does after the whole response (Starlette's background tasks)
                # has no deadline, as before.
                deadline.reschedule(None)

        try:
            async with deadline:
                await self.app(scope, receive, recording_send)
        except BaseException:
            if not deadline.expired():
                self._observe(scope, status, started)
                raise
            # Whatever the app raised while being cancelled (TimeoutError if it let the
            # cancellation through), the request ran past its deadline.
        if deadline.expired():
            await self._expired(scope, send, status, response_started, started)
        else:
            self._observe(scope, status, started)

    def _observe(self, scope: dict[str, Any], status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        http_metrics.observe(scope.get("method", ""), status, routes.asgi_route(scope), seconds)

    async def _expired(
        self,
        scope: dict[str, Any],
        send: Callable[..., Any],
        status: int,
        response_started: bool,
        started: float,
    ) -> None:
        outcome = expiry_outcome(response_started)
        report_expiry(
            self.log,
            Expiry(
                scope.get("method", ""),
                scope.get("path", ""),
                routes.asgi_route(scope),
                status,
                outcome,
            ),
            self.timeout,
            time.perf_counter() - started,
            "; its task cancelled",
        )
        if outcome == "504":
            headers = [(name.lower().encode(), value.encode()) for name, value in TIMEOUT_HEADERS]
            await send({"type": "http.response.start", "status": 504, "headers": headers})
            await send({"type": "http.response.body", "body": TIMEOUT_BODY})
        # Else returning with the response incomplete makes the server close the connection
        # (uvicorn: "ASGI callable returned without completing response").


async def _send_health(send: Callable[..., Any]) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in _HEALTH_HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": HEALTH_BODY})
