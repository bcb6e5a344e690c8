"""Queue time from X-Request-Start: the formats proxies send, and what is not a wait."""

from __future__ import annotations

import pytest

from herd_runtime.request_start import MAX_SECONDS, queue_seconds

NOW = 1_700_000_000.5


@pytest.mark.parametrize(
    ("header", "waited"),
    [
        ("t=1700000000.250", 0.25),  # nginx: t=${msec}
        ("1700000000.250", 0.25),  # seconds without the prefix
        ("t=1700000000250", 0.25),  # milliseconds
        ("1700000000250000", 0.25),  # microseconds (Heroku-style, no prefix)
        ("t=1700000000250000", 0.25),
        (" t=1700000000.5 ", 0.0),  # no wait at all; surrounding space tolerated
        (None, None),  # absent
        ("", None),
        ("t=", None),
        ("t=soon", None),  # unparseable
        ("t=nan", None),
        ("t=inf", None),
        ("t=1700000001.5", None),  # negative: the proxy's clock is ahead
        (f"t={NOW - MAX_SECONDS - 1}", None),  # absurd: more than an hour
        ("t=0", None),  # the epoch: absurd
    ],
)
def test_queue_seconds(header: str | None, waited: float | None) -> None:
    assert queue_seconds(header, NOW) == (waited if waited is None else pytest.approx(waited))
