"""Queue time from the proxy's `X-Request-Start` header. Pure.

nginx sends `t=${msec}` (seconds with milliseconds, `t=1700000000.123`); Heroku and others send
integer milliseconds or microseconds since the epoch, with or without `t=`. The unit of a bare
integer is told by its size, as New Relic's agents do. The proxy's clock is not the pod's: with
NTP both are within milliseconds, but a skewed proxy makes the wait look shorter or longer by
the skew, and a wait below zero (the proxy's clock ahead) or beyond an hour is not a wait at
all: those are ignored, as is anything unparseable.
"""

from __future__ import annotations

import math

HEADER = "X-Request-Start"
WSGI_KEY = "HTTP_X_REQUEST_START"
ASGI_KEY = b"x-request-start"
#: A wait longer than this is a broken clock or header, not a queue.
MAX_SECONDS = 3600.0
#: A bare number above these is in milliseconds, microseconds (seconds since the epoch are
#: ~1.7e9 now and stay below 1e11 until the year 5138).
_MILLIS_FROM = 1e11
_MICROS_FROM = 1e14


def queue_seconds(header: str | None, now: float) -> float | None:
    """Seconds from the proxy's receipt (`header`) to `now` (seconds since the epoch), or None."""
    if not header:
        return None
    text = header.strip()
    text = text.removeprefix("t=")
    try:
        started = float(text)
    except ValueError:
        return None
    if not math.isfinite(started):
        return None
    if started >= _MICROS_FROM:
        started /= 1e6
    elif started >= _MILLIS_FROM:
        started /= 1e3
    waited = now - started
    return waited if 0 <= waited <= MAX_SECONDS else None


def asgi_header(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == ASGI_KEY:  # ASGI header names are lowercase
            return value.decode("latin-1")
    return None
