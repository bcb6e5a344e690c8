"""What the sample endpoints do, shared by both apps."""

from __future__ import annotations

import random
import time

#: Upper bound of the `ms` parameters: a request never holds a worker longer than this.
MAX_MS = 10_000
#: Status codes /fail may answer with.
FAILURE_CODES = (500, 503)


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
