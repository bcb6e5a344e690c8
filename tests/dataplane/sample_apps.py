"""Small apps the data-plane tests serve besides the examples."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

#: Not an app: herd-serve must refuse it.
not_callable = 42


def counting_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that appends a line to $COUNTING_APP_FILE on every call it gets."""
    with Path(os.environ["COUNTING_APP_FILE"]).open("a") as calls:
        calls.write(environ["PATH_INFO"] + "\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"counted"]


def _record(event: str) -> None:
    with Path(os.environ["DEADLINE_APP_FILE"]).open("a") as events:
        events.write(event + "\n")


def _spin(seconds: float) -> None:
    """Pure Python for that long: interruptible between any two bytecodes."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def deadline_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app for request deadlines; every route reports itself as its route label.

    /pid: this worker's pid; /spin: 10 s of pure Python; /sleep: one 30 s time.sleep (C);
    /stream: starts a chunked response, then spins. Interruptions go to $DEADLINE_APP_FILE."""
    path = environ["PATH_INFO"]
    environ["herd.route"] = path
    text = [("Content-Type", "text/plain")]
    if path == "/pid":
        start_response("200 OK", text)
        return [str(os.getpid()).encode()]
    try:
        if path == "/spin":
            _spin(10)
        elif path == "/sleep":
            time.sleep(30)
        elif path == "/stream":
            start_response("200 OK", text)
            return _spinning_stream()
    except BaseException as interruption:
        _record(f"{path} {type(interruption).__name__}")
        raise
    start_response("200 OK", text)
    return [b"done"]


def _spinning_stream() -> Iterator[bytes]:
    yield b"first chunk\n"
    try:
        _spin(10)
    except BaseException as interruption:
        _record(f"/stream {type(interruption).__name__}")
        raise
    yield b"never sent\n"


async def deadline_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same routes as deadline_wsgi for ASGI; /spin and /sleep await asyncio.sleep."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    scope["herd.route"] = path
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }
    if path == "/pid":
        await send(start)
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
        return
    try:
        if path == "/stream":
            await send(start)
            await send({"type": "http.response.body", "body": b"first chunk\n", "more_body": True})
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        _record(f"{path} CancelledError")
        raise
    await send(start)
    await send({"type": "http.response.body", "body": b"done"})


def frozen_objects_wsgi(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """A WSGI app answering how many objects this worker's garbage collector leaves alone
    (`gc.freeze`, herd_runtime.gunicorn_config.freeze_heap)."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(gc.get_freeze_count()).encode()]
