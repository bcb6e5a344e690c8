"""The HTTP metrics every Herd app exports. Label values are bounded: route templates, a fixed
set of methods, status codes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
