"""The HTTP metrics every Herd app exports. Label values are bounded: route templates, a fixed
set of methods, status codes."""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge, Histogram

#: The route label of a request no route matched (404s, scans): never the raw path.
UNMATCHED = "<unmatched>"

#: Prometheus's default buckets: 5 ms to 10 s covers web requests up to the usual timeouts.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Any other method a client sends is counted as "other": clients choose methods freely.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)

REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered by the app, by method, status code and route template.",
    ["method", "code", "route"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving an HTTP request to finishing its response, by route template.",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)


def observe(method: str, code: int | str, route: str | None, seconds: float) -> None:
    method = method if method in KNOWN_METHODS else "other"
    route = route or UNMATCHED
    REQUESTS.labels(method, str(code), route).inc()
    DURATION.labels(method, route).observe(seconds)


TIMEOUTS = Counter(
    "http_request_timeouts",
    "HTTP requests that ran past the server's timeout, by method, route template and what the "
    'client got: response="504", or "closed" (the connection, the response having started).',
    ["method", "route", "response"],
)
WORKER_RECYCLES = Counter(
    "herd_worker_recycles",
    "Worker processes that ended themselves, by reason (stuck_request: a request thread still "
    "busy a graceful timeout after its deadline).",
    ["reason"],
)


def observe_timeout(method: str, route: str | None, response: str) -> None:
    method = method if method in KNOWN_METHODS else "other"
    TIMEOUTS.labels(method, route or UNMATCHED, response).inc()


#: Queue time: 1 ms to 10 s, finer at the low end where a healthy pod sits.
QUEUE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# Unlabelled metrics, unlike the others, open their multiprocess file when they are made: made
# by middleware.instrument, they open it in a serving worker, not in herd-serve before it has
# checked PROMETHEUS_MULTIPROC_DIR (nor in the arbiter, which serves no request).
@functools.cache
def in_flight() -> Gauge:
    return Gauge(
        "http_requests_in_flight",
        "HTTP requests the app is serving now, summed over the live workers (the health path "
        "excluded). A worker's count leaves the sum when the worker exits.",
        # livesum: the arbiter drops a dead worker's live* files (mark_process_dead in
        # child_exit), so a killed worker's requests stop counting; "sum" would keep them.
        multiprocess_mode="livesum",
    )


@functools.cache
def queue() -> Histogram:
    return Histogram(
        "http_request_queue_seconds",
        "Time from the proxy receiving an HTTP request (its X-Request-Start header) to the app "
        "starting it: the time it waited for a free worker. Only requests carrying the header.",
        buckets=QUEUE_BUCKETS,
    )


def observe_queue(seconds: float | None) -> None:
    if seconds is not None:
        queue().observe(seconds)
