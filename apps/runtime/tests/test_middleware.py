"""The middleware in-process: route templates, the health path, one count per request, requests
in flight and their queue time."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask
from prometheus_client import REGISTRY
from werkzeug.test import Client

from herd_runtime.http_metrics import UNMATCHED
from herd_runtime.middleware import instrument
from herd_runtime.routes import asgi_route, wsgi_route


def wsgi_client(app: Flask) -> Client:
    """Reads every response whole, so the server side closes it, as a WSGI server does."""
    return Client(instrument(app, "wsgi", "/healthz"), use_cookies=False)


async def asgi_get(
    app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
    """One GET through an ASGI app, as a server would drive it."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], body


def requests_counted(method: str, code: str, route: str) -> float:
    labels = {"method": method, "code": code, "route": route}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


@pytest.fixture
def flask_app() -> Flask:
    app = Flask("test")
    app.calls = 0  # type: ignore[attr-defined]

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        app.calls += 1  # type: ignore[attr-defined]
        return str(item_id)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    return app


def test_flask_routes_are_templates(flask_app: Flask) -> None:
    client = wsgi_client(flask_app)
    before = requests_counted("GET", "200", "/items/<int:item_id>")
    for item_id in range(5):
        assert client.get(f"/items/{item_id}", buffered=True).status_code == 200
    assert requests_counted("GET", "200", "/items/<int:item_id>") == before + 5

    unmatched = requests_counted("GET", "404", UNMATCHED)
    assert client.get("/nowhere", buffered=True).status_code == 404
    assert requests_counted("GET", "404", UNMATCHED) == unmatched + 1

    failed = requests_counted("GET", "500", "/boom")
    assert client.get("/boom", buffered=True).status_code == 500
    assert requests_counted("GET", "500", "/boom") == failed + 1


def test_wsgi_health_skips_the_app_and_the_metrics(flask_app: Flask) -> None:
    client = wsgi_client(flask_app)
    response = client.get("/healthz")
    assert (response.status_code, response.data) == (200, b"ok")
    assert flask_app.calls == 0  # type: ignore[attr-defined]
    assert requests_counted("GET", "200", "/healthz") == 0


def test_fastapi_routes_are_templates_and_health_is_answered() -> None:
    app = FastAPI()
    calls: list[int] = []

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> int:
        calls.append(item_id)
        return item_id

    before = requests_counted("GET", "200", "/items/{item_id}")
    wrapped = instrument(app, "asgi", "/healthz")
    for item_id in range(5):
        assert asyncio.run(asgi_get(wrapped, f"/items/{item_id}"))[0] == 200
    assert asyncio.run(asgi_get(wrapped, "/healthz")) == (200, b"ok")
    assert asyncio.run(asgi_get(wrapped, "/nowhere"))[0] == 404
    assert requests_counted("GET", "200", "/items/{item_id}") == before + 5
    assert calls == list(range(5))
    assert requests_counted("GET", "200", "/healthz") == 0


def test_unknown_methods_share_one_label(flask_app: Flask) -> None:
    client = wsgi_client(flask_app)
    before = requests_counted("other", "405", UNMATCHED)
    client.open("/items/1", method="BREW", buffered=True)
    assert requests_counted("other", "405", UNMATCHED) == before + 1


class Route:
    path = "/users/{user_id}"


@pytest.mark.parametrize(
    ("scope", "route"),
    [
        ({"route": Route()}, "/users/{user_id}"),
        ({"route": Route(), "herd.route": "/explicit"}, "/explicit"),
        ({}, None),
        ({"route": object()}, None),
    ],
)
def test_asgi_route(scope: dict[str, Any], route: str | None) -> None:
    assert asgi_route(scope) == route


def test_wsgi_route_reads_what_an_adapter_set() -> None:
    assert wsgi_route({"herd.route": "/a/<id>"}) == "/a/<id>"
    assert wsgi_route({}) is None


def in_flight() -> float:
    return REGISTRY.get_sample_value("http_requests_in_flight") or 0.0


def queued() -> float:
    return REGISTRY.get_sample_value("http_request_queue_seconds_count") or 0.0


def test_wsgi_requests_are_in_flight_while_served_and_their_queue_time_counted() -> None:
    app = Flask("test")
    inside, release = threading.Event(), threading.Event()

    @app.get("/slow")
    def slow() -> str:
        inside.set()
        release.wait(5)
        return "done"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    client = wsgi_client(app)
    before, before_queued = in_flight(), queued()
    header = {"X-Request-Start": f"t={time.time() - 0.05:.3f}"}
    worker = threading.Thread(target=lambda: client.get("/slow", headers=header, buffered=True))
    worker.start()
    assert inside.wait(5)
    assert in_flight() == before + 1
    assert client.get("/healthz").status_code == 200
    assert in_flight() == before + 1  # the health path is never in flight
    release.set()
    worker.join(5)
    assert client.get("/boom", buffered=True).status_code == 500
    assert in_flight() == before  # finished, failed or not
    assert queued() == before_queued + 1  # only the request that carried the header
    assert (
        REGISTRY.get_sample_value("http_request_queue_seconds_bucket", {"le": "0.025"}) or 0
    ) < (REGISTRY.get_sample_value("http_request_queue_seconds_bucket", {"le": "0.1"}) or 0)


def test_asgi_requests_are_in_flight_while_served() -> None:
    app = FastAPI()
    seen: list[float] = []

    @app.get("/slow")
    async def slow() -> str:
        seen.append(in_flight())
        return "done"

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("boom")

    wrapped = instrument(app, "asgi", "/healthz")
    before = in_flight()
    assert asyncio.run(asgi_get(wrapped, "/slow"))[0] == 200
    assert seen == [before + 1]
    with pytest.raises(RuntimeError):
        asyncio.run(asgi_get(wrapped, "/boom"))
    assert asyncio.run(asgi_get(wrapped, "/healthz")) == (200, b"ok")
    assert in_flight() == before


def test_asgi_queue_time_from_the_header() -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> str:
        return "ok"

    wrapped = instrument(app, "asgi", "/healthz")
    before = queued()
    headers = [(b"x-request-start", f"t={time.time() - 0.2:.3f}".encode())]
    assert asyncio.run(asgi_get(wrapped, "/", headers))[0] == 200
    assert queued() == before + 1
    sum_ = REGISTRY.get_sample_value("http_request_queue_seconds_sum") or 0.0
    assert sum_ >= 0.2
