"""What the sample endpoints do, shared by both apps."""

from __future__ import annotations

import random
import time

#: Upper bound of the `ms` parameters: a request never holds a worker longer than this.
MAX_MS = 10_000
#: Status codes /fail may answer with.
FAILURE_CODES = (500, 503)


def burn_cpu(ms: float) -> int:
    """Keeps the CPU busy for `ms` of wall time; returns the iterations done."""
    deadline = time.perf_counter() + ms / 1000
    iterations = 0
    while time.perf_counter() < deadline:
        iterations += 1
    return iterations


def should_fail(rate: float) -> bool:
    return random.random() < rate
