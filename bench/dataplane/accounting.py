"""How much of the machine's CPU went to something other than the bench during a run: on two
cores, any other load comes straight off the numbers."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

#: The machine may be shared: a cell starts once all CPUs are less busy than IDLE_BELOW (or after
#: IDLE_WAIT_SECONDS), and is measured again, up to ATTEMPTS times in all, when other load took
#: more than NOISY_ABOVE of all CPU time during it; the quietest attempt counts.
IDLE_BELOW = 0.15
IDLE_WAIT_SECONDS = 120
ATTEMPTS = 3
NOISY_ABOVE = 0.15


@dataclass(frozen=True)
class CpuSnapshot:
    busy_seconds: float  # every CPU, from /proc/stat
    total_seconds: float
    bench_seconds: float  # this process and its waited-for children: servers (workers too), wrk


def snapshot() -> CpuSnapshot:
    first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, first_line.split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    times = os.times()
    return CpuSnapshot(
        busy_seconds=(user + nice + system + irq + softirq + steal) / tick,
        total_seconds=(user + nice + system + idle + iowait + irq + softirq + steal) / tick,
        bench_seconds=times.user + times.system + times.children_user + times.children_system,
    )


def foreign_share(start: CpuSnapshot, end: CpuSnapshot) -> float:
    """The share of all CPU time in between that was busy outside the bench's processes: other
    processes, and kernel work charged to none (some of the loopback networking)."""
    total = end.total_seconds - start.total_seconds
    busy = end.busy_seconds - start.busy_seconds
    foreign = busy - (end.bench_seconds - start.bench_seconds)
    return max(foreign, 0.0) / total if total > 0 else math.nan


def busy_share(seconds: float) -> float:
    """How busy all CPUs are over the next `seconds`."""
    start = snapshot()
    time.sleep(seconds)
    end = snapshot()
    total = end.total_seconds - start.total_seconds
    return (end.busy_seconds - start.busy_seconds) / total if total > 0 else 0.0


def wait_until_idle() -> float:
    """Waits until the machine is less than IDLE_BELOW busy over a second, or for
    IDLE_WAIT_SECONDS (the cell is then measured anyway, and its foreign share tells); returns
    the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < IDLE_WAIT_SECONDS and busy_share(1.0) >= IDLE_BELOW:
        pass  # busy_share has slept a second
    return time.monotonic() - started
