"""WSGI and ASGI middleware: answers the health path itself and records the HTTP metrics of
every other request once, when its response is finished."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from uvicorn.middleware.asgi2 import ASGI2Middleware

from herd_runtime import http_metrics, routes
from herd_runtime.appload import Interface, speaks_asgi3

HEALTH_BODY = b"ok"
_HEALTH_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(HEALTH_BODY))),
    ("Cache-Control", "no-store"),
]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
AsgiApp = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Any]


def instrument(app: Any, interface: Interface, health_path: str) -> Any:
    """Wraps the app for the interface its server speaks."""
    routes.install_adapters(app)
    if interface == "asgi":
        return AsgiMiddleware(app if speaks_asgi3(app) else ASGI2Middleware(app), health_path)
    return WsgiMiddleware(app, health_path)


class WsgiMiddleware:
    def __init__(self, app: WsgiApp, health_path: str) -> None:
        self.app = app
        self.health_path = health_path

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.health_path:
            # Liveness of this process only: no routing, no app code, no logging, no metrics.
            start_response("200 OK", _HEALTH_HEADERS)
            return [HEALTH_BODY]
        started = time.perf_counter()
        status = ["500"]  # what the server answers if the app fails before starting a response

        def recording_start_response(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            seconds = time.perf_counter() - started
            route = routes.wsgi_route(environ)
            http_metrics.observe(environ.get("REQUEST_METHOD", ""), status[0], route, seconds)

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            finish()
            raise
        return _ObservedBody(body, finish)


class _ObservedBody:
    """The app's response body; the request counts when the server closes it, which every WSGI
    server does exactly once, after the last byte or on an error."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


class AsgiMiddleware:
    def __init__(self, app: AsgiApp, health_path: str) -> None:
        self.app = app
        self.health_path = health_path

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":  # lifespan and websockets pass through untouched
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.health_path:
            await _send_health(send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            seconds = time.perf_counter() - started
            route = routes.asgi_route(scope)
            http_metrics.observe(scope.get("method", ""), status, route, seconds)


async def _send_health(send: Callable[..., Any]) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in _HEALTH_HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": HEALTH_BODY})
