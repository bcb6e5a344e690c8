"""The workload classes as wrk runs, and wrk's output as numbers."""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.harness import appservers, nginx_wrk


@dataclass(frozen=True)
class Workload:
    name: str
    paths: tuple[str, ...]  # several: each connection's requests alternate between them
    connections: int  # per CPU of the server

    def for_cpus(self, cpus: int) -> Workload:
        """The load on a server of `cpus` CPUs: `connections` for each, so that the client does
        not cap a 2-CPU server (256 connections of 50 ms cap io at 5,120 req/s)."""
        return replace(self, connections=self.connections * cpus)


#: Connections per workload and CPU (closed loop: each sends its next request when answered).
#: io: 256 exceeds the concurrency of every grid cell but gevent's (gthread tops out at 3 × 32
#: threads) and lets an event loop reach the CPU's limit (256 / 50 ms = 5,120 req/s at most),
#: so a configuration's own capacity (its threads, or the CPU) limits the rate, not the client.
#: cpu: 8 keeps every process and thread of a 1- or 2-CPU server busy; more would only queue.
#: mixed: 32; a request waits 25 ms or computes 5 ms, about 15 ms on average.
WORKLOADS = (
    Workload("io", ("/io?ms=50",), 256),
    Workload("cpu", ("/cpu?ms=10",), 8),
    Workload("mixed", ("/io?ms=25", "/cpu?ms=5"), 32),
)
#: wrk's default 2 s would count the queue of one sync worker (256 × 50 ms = 12.8 s) as errors.
WRK_TIMEOUT_SECONDS = 20
#: One event loop sends a few thousand requests/s with ease and keeps wrk on one core.
WRK_THREADS = 1

_ALTERNATE_SCRIPT = """\
-- Alternates the workload's paths request by request.
local requests = {{}}
local index = 0
function init(args)
  for i, path in ipairs({{{paths}}}) do requests[i] = wrk.format(nil, path) end
end
function request()
  index = index % #requests + 1
  return requests[index]
end
"""

_PERCENTILE = re.compile(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


@dataclass(frozen=True)
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)  # only the non-zero kinds
    failure: str = ""  # why there are no numbers (the server did not start, wrk failed)
    busiest_worker_share: float = math.nan
    worker_restarts: int = 0
    foreign_cpu_share: float = math.nan  # see accounting.foreign_share
    attempts: int = 1
    idle_wait_seconds: float = 0.0  # waiting for other load to end before the attempts

    @classmethod
    def failed(cls, reason: str) -> Measurement:
        return cls(0.0, math.nan, math.nan, 0, failure=reason)


def write_script(workload: Workload, directory: Path) -> Path | None:
    """A Lua script for a workload of several paths; None for a single path."""
    if len(workload.paths) == 1:
        return None
    script = directory / f"{workload.name}.lua"
    paths = ", ".join(f'"{path}"' for path in workload.paths)
    script.write_text(_ALTERNATE_SCRIPT.format(paths=paths))
    return script


def wrk_command(
    workload: Workload, port: int, seconds: int, cores: str | None, script: Path | None
) -> list[str]:
    pin = ["taskset", "-c", cores] if cores else []
    command = [
        *pin,
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{workload.connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        "--latency",
    ]
    if script is not None:
        command += ["-s", str(script)]
    return [*command, f"http://{appservers.LOOPBACK}:{port}{workload.paths[0]}"]


def run_wrk(
    workload: Workload, port: int, seconds: int, cores: str | None, script: Path | None
) -> str:
    """wrk's report; every run is bounded by `-d` (and by a subprocess timeout)."""
    completed = subprocess.run(
        wrk_command(workload, port, seconds, cores, script),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + WRK_TIMEOUT_SECONDS + 20,
    )
    return completed.stdout


def latency_percentiles_ms(output: str) -> dict[int, float]:
    """wrk's `--latency` distribution (`    99%  12.34ms`) in milliseconds, by percentile."""
    return {
        int(percent): float(value) * _MS_PER_UNIT[unit]
        for percent, value, unit in _PERCENTILE.findall(output)
    }


def parse_measurement(output: str) -> Measurement:
    result = nginx_wrk.parse_wrk(output)
    # wrk prints a distribution of zeros when nothing completed: no latency to report then.
    percentiles = (
        latency_percentiles_ms(output) if result.requests else {50: math.nan, 99: math.nan}
    )
    errors = {
        "connect": result.connect_errors,
        "read": result.read_errors,
        "write": result.write_errors,
        "timeout": result.timeouts,
    }
    return Measurement(
        requests_per_second=result.requests_per_second,
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        non_2xx_3xx=result.non_2xx_3xx,
        socket_errors={kind: count for kind, count in errors.items() if count},
    )
