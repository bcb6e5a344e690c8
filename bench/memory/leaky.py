"""The example apps with one more path, /leak, that keeps LEAK_BYTES per request for the life of
the worker: the leak the benchmark bounds with --max-requests. Only the benchmark serves them,
as app factories (`bench.memory.leaky:asgi()`), so each imports only its own framework."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

LEAK_PATH = "/leak"
LEAK_BYTES = 64 * 1024
_kept: list[bytes] = []


def _leak() -> bytes:
    # Written, not calloc-ed zeros: pages count as resident only once touched.
    _kept.append(b"x" * LEAK_BYTES)
    return f"kept {len(_kept)}\n".encode()


def asgi() -> Callable[..., Any]:
    """The FastAPI example app with /leak."""
    from herd_examples.fastapi_app import app

    async def leaky(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != LEAK_PATH:
            await app(scope, receive, send)
            return
        body = _leak()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return leaky


def wsgi() -> Callable[..., Iterable[bytes]]:
    """The Flask example app with /leak."""
    from herd_examples.flask_app import app

    def leaky(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] != LEAK_PATH:
            return app(environ, start_response)
        body = _leak()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return leaky
