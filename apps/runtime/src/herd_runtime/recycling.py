"""A uvicorn worker for gunicorn that honours `max_requests` without dropping connections.

uvicorn_worker.UvicornWorker hands gunicorn's jittered `max_requests` to uvicorn, which at the
limit shuts down at once: it closes every connection with no request in progress, including
ones it accepted but had not read yet (gunicorn #2567), so their clients get a reset. This
worker instead drains: it stops accepting (the other workers take new connections), answers
every request still arriving on its connections with `Connection: close`, and exits once its
connections are gone or after DRAIN_SECONDS; gunicorn's arbiter then starts a replacement.

herd-serve runs it in place of `uvicorn_worker.UvicornWorker` (`workers.with_recycling_worker`), so
the operator keeps rendering the class name every herd-runtime release can load.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

#: How long a draining worker waits for requests on connections it already accepted. A client
#: sends its request within a round trip of connecting; the worker accepts nothing meanwhile,
#: so a longer wait only costs capacity until the replacement is up.
DRAIN_SECONDS = 1.0

Step = Literal["serve", "drain", "exit"]

_CLOSE = (b"connection", b"close")


def recycle_step(
    requests: int, limit: int, drain_started: float | None, connections: int, now: float
) -> Step:
    """What a worker does on uvicorn's tick: serve on, start draining once `requests` reached
    `limit`, and exit when draining left no connection or ran out of time."""
    if drain_started is None:
        return "drain" if requests >= limit else "serve"
    if connections == 0 or now - drain_started >= DRAIN_SECONDS:
        return "exit"
    return "serve"


class DrainingServer(Server):
    """uvicorn's server, recycled by `recycle_step` instead of uvicorn's own request limit."""

    def __init__(self, config: Any, limit: int) -> None:
        super().__init__(config)
        self.limit = limit
        self.drain_started: float | None = None

    @property
    def draining(self) -> bool:
        return self.drain_started is not None

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        now = time.monotonic()
        step = recycle_step(
            self.server_state.total_requests,
            self.limit,
            self.drain_started,
            len(self.server_state.connections),
            now,
        )
        if step == "drain":
            logging.getLogger("uvicorn.error").info(
                "Recycling after %d requests: draining", self.server_state.total_requests
            )
            self.drain_started = now
            for server in self.servers:
                server.close()  # the listening sockets; accepted connections stay open
        return step == "exit"


def closing_while(draining: Callable[[], bool], app: Any) -> Any:
    """The ASGI app, its responses marked `Connection: close` while `draining()` holds: uvicorn
    then closes each connection once its response is sent, so none is cut mid-request."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and draining():
                message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        await app(scope, receive, send_closing)

    return wrapped


class RecyclingUvicornWorker(UvicornWorker):
    """uvicorn_worker.UvicornWorker, recycled after gunicorn's `max_requests` (plus its jitter,
    drawn by gunicorn per worker) by draining rather than by uvicorn's abrupt limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.limit_max_requests = None  # DrainingServer keeps the limit instead

    async def _serve(self) -> None:
        # uvicorn_worker's _serve with DrainingServer; self.wsgi is the app as post_worker_init
        # left it (Herd's middleware).
        server = DrainingServer(self.config, self.max_requests)
        self.config.app = closing_while(lambda: server.draining, self.wsgi)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
