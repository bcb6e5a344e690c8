"""What the sample endpoints do, shared by both apps."""

from __future__ import annotations

import os
import random
import time

#: Upper bound of the `ms` parameters: a request never holds a worker longer than this.
MAX_MS = 10_000
#: Status codes /fail may answer with.
FAILURE_CODES = (500, 503)
#: A share of every request (0 to 1) that fails with 500 — a broken release to roll back, set in
#: the WebService's env so a canary of it differs from the stable version by this alone.
FAILURE_RATE_ENV = "EXAMPLE_FAILURE_RATE"


def burn_cpu(ms: float) -> int:
    """Computes for `ms` of this thread's own CPU time; returns the iterations done.

    CPU time, not wall time: a request preempted by other threads or processes must still cost
    its full `ms` of CPU. Timed by the wall clock, 3 sync workers on one core answered 206 req/s
    of `/cpu?ms=10`, more than the 100/s the core can compute (bench/dataplane)."""
    deadline = time.thread_time() + ms / 1000
    iterations = 0
    while time.thread_time() < deadline:
        iterations += 1
    return iterations


def should_fail(rate: float) -> bool:
    return random.random() < rate


def injected_failure_rate() -> float:
    """The rate from FAILURE_RATE_ENV; a value outside 0..1 fails at start, not per request."""
    raw = os.environ.get(FAILURE_RATE_ENV, "0")
    rate = float(raw)
    if not 0 <= rate <= 1:
        raise ValueError(f"{FAILURE_RATE_ENV} must be between 0 and 1, not {raw!r}")
    return rate
