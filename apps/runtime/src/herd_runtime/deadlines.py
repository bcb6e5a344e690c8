"""Request deadlines for WSGI workers whose requests run in OS threads (sync and gthread).

gunicorn's `timeout` is a heartbeat: the arbiter kills a worker whose main loop stopped
reporting, which bounds a request only in the sync worker, where the request runs in that loop.
A gthread worker's loop keeps reporting while its pool threads hang. So each worker process runs
one monitor thread that watches every request in flight. At a request's deadline it

1. answers `504 Gateway Timeout` on the request's socket itself if the response has not been
   handed to gunicorn yet (nothing is on the wire then), and shuts the socket down either way:
   the client gets the 504, or a connection closed mid-response; the request's thread, whatever
   it does later, can no longer write to it (EPIPE) nor block reading the request body (EOF);
2. counts the request (`http_requests_total` and `http_request_timeouts_total`);
3. raises `RequestTimeout` into the request's thread if it is running the app's code, with
   `PyThreadState_SetAsyncExc`. CPython delivers such an exception only between bytecodes: pure
   Python code is interrupted within a switch interval (5 ms), a call into C (`time.sleep`, a
   socket or database read, a C loop) only once it returns.

Once the app's body is exhausted the response is gunicorn's to finish, and what the app's code
does after (a body's close) has no deadline.

A thread still in its request `graceful_timeout` seconds after the deadline is stuck, and the
worker is recycled. A gthread worker sends itself SIGTERM, so gunicorn stops accepting, gives the
other requests in flight `graceful_timeout` to finish and returns; the `worker_exit` hook then
ends the process (the stuck thread would keep a normal interpreter exit waiting on it forever).
A sync worker has no other request in flight: it exits at once. The arbiter starts a new worker.

The sync worker's main loop reports to the arbiter only between requests, so its heartbeat would
kill the worker at the very moment of the deadline, before the request could be answered or
interrupted. The monitor reports for it while it watches its request, until it recycles the
worker; should the monitor itself not get to run (C code holding the GIL), the heartbeat still
goes stale and the arbiter kills the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from herd_runtime import http_metrics, routes

#: What the client got when its request ran past the deadline.
Outcome = Literal["504", "closed"]
#: What the monitor does about one request now.
Due = Literal["wait", "expire", "recycle"]

TIMEOUT_BODY = b"Gateway Timeout: the request ran past the server's timeout\n"
TIMEOUT_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", str(len(TIMEOUT_BODY))),
    ("Connection", "close"),
]
TIMEOUT_STATUS = "504 Gateway Timeout"
#: The monitor never sleeps longer than this while requests are in flight, nor reports a sync
#: worker's heartbeat less often.
MAX_WAKEUP_SECONDS = 0.5

T = TypeVar("T")


class RequestTimeout(Exception):  # noqa: N818 (the name says what happened, like TimeoutError)
    """Raised into a request's thread at its deadline. An Exception, not a BaseException: should
    it ever escape the middleware, gunicorn handles it as an app error instead of losing the
    pool thread."""


def deadline_seconds(timeout: float) -> float | None:
    """gunicorn's `timeout` 0 means no timeout, so no deadline either."""
    return float(timeout) if timeout > 0 else None


def watchable(environ: Mapping[str, Any]) -> bool:
    """The monitor answers on the request's socket, so only an HTTP/1 request, which owns its
    connection: an HTTP/2 stream shares it with others (gunicorn's `--http-protocols h2`)."""
    protocol = str(environ.get("SERVER_PROTOCOL", ""))
    return protocol.startswith("HTTP/1.") and environ.get("HTTP_VERSION") != "2"


def expiry_outcome(response_started: bool) -> Outcome:
    """A 504 can be sent only while nothing of the response is on the wire."""
    return "closed" if response_started else "504"


@dataclass(frozen=True)
class Expiry:
    """A request that ran past its deadline, and what its client got."""

    method: str
    path: str
    route: str | None
    status: int | str  # the status the app had sent, if any
    outcome: Outcome


def report_expiry(
    log: logging.Logger, expiry: Expiry, timeout: float, seconds: float, detail: str = ""
) -> None:
    """Count the request (as a 504 when that is what the client got) and say so in the log:
    the same for a WSGI thread and an ASGI task."""
    code = "504" if expiry.outcome == "504" else expiry.status
    http_metrics.observe(expiry.method, code, expiry.route, seconds)
    http_metrics.observe_timeout(expiry.method, expiry.route, expiry.outcome)
    log.warning(
        "%s %s ran past its %g s deadline: %s%s",
        expiry.method,
        expiry.path,
        timeout,
        "answered 504" if expiry.outcome == "504" else "connection closed mid-response",
        detail,
    )


@dataclass(frozen=True)
class Watch:
    """The monitor's view of one request in flight."""

    deadline: float
    #: When the monitor expired it; None while it is within its deadline.
    expired_at: float | None
    #: The app's body is exhausted: the response is gunicorn's to finish, and what the app's
    #: code does after (close callbacks) has no deadline, as Starlette's background tasks.
    complete: bool = False


def due(watch: Watch, now: float, graceful_timeout: float) -> Due:
    if watch.expired_at is None:
        return "expire" if now >= watch.deadline and not watch.complete else "wait"
    return "recycle" if now - watch.expired_at >= graceful_timeout else "wait"


def next_wakeup(
    watches: list[Watch], now: float, graceful_timeout: float, recycling: bool
) -> float:
    """Seconds until something is due for one of the requests, at most MAX_WAKEUP_SECONDS.
    Once the worker is recycling, a stuck request has nothing more due."""
    moments = [w.deadline for w in watches if w.expired_at is None and not w.complete]
    if not recycling:
        moments += [w.expired_at + graceful_timeout for w in watches if w.expired_at is not None]
    return max(0.0, min([m - now for m in moments] + [MAX_WAKEUP_SECONDS]))


class TrackedRequest:
    """One request's state, shared by its thread and the monitor under `lock`."""

    def __init__(self, environ: dict[str, Any], deadline: float, started: float) -> None:
        self.environ = environ
        self.thread_id = threading.get_ident()
        self.socket: socket.socket | None = environ.get("gunicorn.socket")
        self.started = started
        self.deadline = deadline
        self.lock = threading.Lock()
        #: The status line's code the app chose; 500 until it calls start_response.
        self.status = "500"
        self.in_app = False
        self.response_started = False
        self.complete = False
        self.expired_at: float | None = None
        self.interrupted = False
        self.finished = False

    def run(self, function: Callable[..., T], *args: Any) -> T:
        """Calls the app's code, interruptible by the monitor. An interruption delivered after
        the app's code returned, on the way out, is caught here too: nothing is pending once
        this returns or raises."""
        try:
            self._enter()
            try:
                return function(*args)
            finally:
                self._leave()
        except RequestTimeout:
            # It is raised at most once per request, so the second _leave is not interrupted.
            self._leave()
            raise

    def _enter(self) -> None:
        with self.lock:
            self.in_app = True

    def _leave(self) -> None:
        with self.lock:
            self.in_app = False
            if self.interrupted:
                # The exception may still be pending if the app's code returned before
                # CPython delivered it: clear it, or it would strike gunicorn's code.
                _set_async_exc(self.thread_id, None)

    def hand_over(self, complete: bool = False) -> bool:
        """Before gunicorn writes anything of the response (`complete`: the rest of it): False
        if the deadline passed."""
        with self.lock:
            if self.expired_at is not None:
                return False
            self.response_started = True
            self.complete = complete
            return True

    def finish(self) -> bool:
        """The response is done: True if it is the thread's to count, False if the monitor
        counted it at its deadline."""
        with self.lock:
            self.finished = True
            return self.expired_at is None

    def watch(self) -> Watch:
        return Watch(self.deadline, self.expired_at, self.complete)


class ThreadDeadlines:
    """The deadline monitor of one worker process; started lazily by the first request, i.e.
    after gunicorn forked the worker."""

    def __init__(
        self,
        timeout: float,
        graceful_timeout: float,
        log: logging.Logger,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.log = log
        self.graceful_timeout = graceful_timeout
        #: The sync worker's `notify`: its main loop cannot report while it serves a request.
        self.heartbeat = heartbeat
        self._requests: dict[int, TrackedRequest] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._recycling = False
        self._last_heartbeat = 0.0

    def track(self, environ: dict[str, Any]) -> TrackedRequest:
        now = time.monotonic()
        request = TrackedRequest(environ, now + self.timeout, now)
        with self._lock:
            idle = not self._requests
            self._requests[id(request)] = request
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._monitor, name="herd-deadlines", daemon=True
                )
                self._thread.start()
        # Only an idle monitor needs waking: a busy one wakes at the earliest deadline in
        # flight, every MAX_WAKEUP_SECONDS at the latest, and this deadline (a whole timeout
        # away, gunicorn's timeout being at least 1 s) is the latest. No thread switch per
        # request under load.
        if idle:
            self._wake.set()
        return request

    def finish(self, request: TrackedRequest) -> bool:
        """The request's response is done: True if it is the caller's to count."""
        with self._lock:
            self._requests.pop(id(request), None)
        return request.finish()

    def _monitor(self) -> None:
        while True:
            with self._lock:
                requests = list(self._requests.values())
            now = time.monotonic()
            if not requests:
                self._wake.wait()
                self._wake.clear()
                continue
            for request in requests:
                action = due(request.watch(), now, self.graceful_timeout)
                if action == "expire":
                    self._expire(request, now)
                elif action == "recycle" and not self._recycling:
                    self._recycle(request, now)
            self._beat(now)
            watches = [r.watch() for r in requests]
            wakeup = next_wakeup(watches, time.monotonic(), self.graceful_timeout, self._recycling)
            self._wake.wait(wakeup)
            self._wake.clear()

    def exit_if_stuck(self) -> None:
        """Once gunicorn's loop has returned: a request thread still running past its deadline
        would keep the interpreter's exit waiting on it (pool threads are joined), so the
        process ends here instead."""
        with self._lock:
            stuck = [r for r in self._requests.values() if r.expired_at is not None]
        if not stuck:
            return
        self.log.warning(
            "Worker %s exits with %d request thread(s) stuck past their deadline",
            os.getpid(),
            len(stuck),
        )
        logging.shutdown()
        os._exit(0)

    def _beat(self, now: float) -> None:
        """Reports for a sync worker's main loop while it serves a request."""
        if self.heartbeat is None or now - self._last_heartbeat < MAX_WAKEUP_SECONDS:
            return
        self.heartbeat()
        self._last_heartbeat = now

    def _expire(self, request: TrackedRequest, now: float) -> None:
        with request.lock:
            if request.finished or request.expired_at is not None:
                return
            request.expired_at = now
            outcome = expiry_outcome(request.response_started)
            _answer_and_close(request.socket, outcome)
            interrupt = request.in_app
            if interrupt:
                request.interrupted = True
                _set_async_exc(request.thread_id, RequestTimeout)
            status = request.status
        environ = request.environ
        report_expiry(
            self.log,
            Expiry(
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                routes.wsgi_route(environ),
                status,
                outcome,
            ),
            self.timeout,
            now - request.started,
            f"; interrupting its thread {_where(request.thread_id)}" if interrupt else "",
        )

    def _recycle(self, request: TrackedRequest, now: float) -> None:
        self._recycling = True
        http_metrics.WORKER_RECYCLES.labels("stuck_request").inc()
        self.log.warning(
            "A request thread is still stuck %.1f s after its deadline %s: recycling worker %s",
            now - (request.expired_at or now),
            _where(request.thread_id),
            os.getpid(),
        )
        if self.heartbeat is not None:
            # A sync worker: the stuck request is its only one.
            logging.shutdown()
            os._exit(0)
        # gunicorn's own graceful stop: no new connections, in-flight requests get
        # graceful_timeout, then the worker's loop returns.
        os.kill(os.getpid(), signal.SIGTERM)


def _answer_and_close(sock: socket.socket | None, outcome: Outcome) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):  # gone, or a TLS socket (takes no flags)
        if outcome == "504":
            head = "".join(f"{name}: {value}\r\n" for name, value in TIMEOUT_HEADERS)
            response = f"HTTP/1.1 {TIMEOUT_STATUS}\r\n{head}\r\n".encode() + TIMEOUT_BODY
            # Never block the monitor on a client that does not read: the response fits in an
            # empty send buffer, and a client that left a full one gets the connection closed.
            sock.send(response, socket.MSG_DONTWAIT)
    with contextlib.suppress(OSError):  # the client went away already
        sock.shutdown(socket.SHUT_RDWR)


def _set_async_exc(thread_id: int, exception: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None
    )


def _where(thread_id: int) -> str:
    """Where a thread is now, for the log: `(at shop/views.py:12 in report)`."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return ""
    last = traceback.extract_stack(frame)[-1]
    return f"(at {last.filename}:{last.lineno} in {last.name})"
