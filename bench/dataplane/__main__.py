"""Measures each sample app under each workload class for gunicorn's defaults, Herd's auto
configuration at 1 and 2 CPUs and a grid at 1 CPU; prints Markdown, optionally into a file.

    .venv/bin/python -m bench.dataplane [--duration 5] [--quick] [--only fastapi/io,flask/io]
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bench.dataplane import accounting, load, report, setups
from bench.dataplane.servers import cpu_sets, drain, pinned_server, worker_counts, worker_spread

#: Per cell, beyond the load itself: an idle check, starting the server, health checks, stopping.
_OVERHEAD_SECONDS = 3


@dataclass(frozen=True)
class Settings:
    duration: int
    warmup: int
    grid: setups.Grid


@dataclass(frozen=True)
class Planned:
    app: setups.App
    workload: load.Workload
    cell: setups.Cell


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__)
    parser.add_argument(
        "--duration", type=int, help="seconds of measured load per cell (default 5, quick 3)"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller grid, 3 s per cell")
    parser.add_argument(
        "--only",
        type=only_groups,
        metavar="APP/WORKLOAD,...",
        help="measure these apps and workloads only, e.g. fastapi/io,flask/io",
    )
    parser.add_argument("--write", type=Path, metavar="FILE", help="write the report to FILE")
    return parser.parse_args(argv)


def only_groups(text: str) -> frozenset[tuple[str, str]]:
    """`fastapi/io,flask/io` as (app, workload) pairs, each one the bench knows."""
    known = {(app.name, workload.name) for app in setups.APPS for workload in load.WORKLOADS}
    groups = set()
    for item in text.split(","):
        app, _, workload = item.strip().partition("/")
        groups.add((app, workload))
    unknown = sorted(f"{app}/{workload}" for app, workload in groups - known)
    if unknown:
        names = ", ".join(sorted(f"{app}/{workload}" for app, workload in known))
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}: use some of {names}")
    return frozenset(groups)


def settings_from(args: argparse.Namespace) -> Settings:
    if args.quick:
        return Settings(args.duration or 3, 1, setups.QUICK_GRID)
    return Settings(args.duration or 5, 1, setups.FULL_GRID)


def check_prerequisites() -> None:
    for binary, package in (("wrk", "wrk"), ("taskset", "util-linux")):
        if shutil.which(binary) is None:
            sys.exit(f"bench.dataplane: {binary} is not installed: apt-get install -y {package}")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("bench.dataplane: needs 2 CPUs, one for the server and one for wrk")


def plan(grid: setups.Grid, only: frozenset[tuple[str, str]] | None = None) -> list[Planned]:
    return [
        Planned(app, workload, cell)
        for app in setups.APPS
        for workload in load.WORKLOADS
        if only is None or (app.name, workload.name) in only
        for cell in setups.cells(app, workload.name, grid)
    ]


def measure(planned: Planned, settings: Settings, workdir: Path) -> load.Measurement:
    """One cell: a fresh server, warm-up load (discarded), measured load."""
    server_cores, wrk_cores = cpu_sets(planned.cell.setup.cpus)
    workload = planned.workload.for_cpus(planned.cell.setup.cpus)
    script = load.write_script(workload, workdir)
    cpu_before = accounting.snapshot()
    try:
        with pinned_server(planned.cell.setup.args, server_cores, workdir) as server:
            load.run_wrk(workload, server.port, settings.warmup, wrk_cores, script)
            drain(server)
            before = worker_counts(server)
            output = load.run_wrk(workload, server.port, settings.duration, wrk_cores, script)
            spread = worker_spread(before, worker_counts(server))
        measurement = load.parse_measurement(output)
    # bench.harness's helpers report a failed start (or unreadable wrk output) with pytest.fail.
    except (pytest.fail.Exception, subprocess.SubprocessError, OSError) as error:
        return load.Measurement.failed(str(error))
    return replace(
        measurement,
        busiest_worker_share=spread.busiest_share,
        worker_restarts=spread.restarts,
        # Over the whole cell: the server's CPU counts as the bench's once it has been waited for.
        foreign_cpu_share=accounting.foreign_share(cpu_before, accounting.snapshot()),
    )


def measure_quietly(planned: Planned, settings: Settings, workdir: Path) -> load.Measurement:
    """A cell measured once the machine is idle, and again while other load skewed it."""
    attempts: list[load.Measurement] = []
    waited = 0.0
    for attempt in range(accounting.ATTEMPTS):
        waited += accounting.wait_until_idle()
        attempt_dir = workdir / str(attempt)
        attempt_dir.mkdir()
        measurement = measure(planned, settings, attempt_dir)
        if measurement.failure:
            return measurement
        attempts.append(measurement)
        if measurement.foreign_cpu_share <= accounting.NOISY_ABOVE:
            break
    quietest = min(attempts, key=lambda m: m.foreign_cpu_share)
    return replace(quietest, attempts=len(attempts), idle_wait_seconds=waited)


def progress(
    index: int, count: int, started: float, planned: Planned, result: report.Result
) -> None:
    measured = result.measurement
    outcome = (
        measured.failure.splitlines()[0]
        if measured.failure
        else (
            f"{measured.requests_per_second:.0f} req/s, p50 {measured.p50_ms:.1f} ms, "
            f"p99 {measured.p99_ms:.1f} ms, busiest worker {measured.busiest_worker_share:.0%}, "
            f"restarts {measured.worker_restarts}, attempts {measured.attempts}, "
            f"non-2xx {measured.non_2xx_3xx}, other CPU {measured.foreign_cpu_share:.0%}, "
            f"socket errors {measured.socket_errors or 0}"
        )
    )
    setup = planned.cell.setup
    print(
        f"[{index}/{count} {(time.monotonic() - started) / 60:4.1f} min] {planned.app.name} "
        f"{planned.workload.name} {setup.label} @{setup.cpus} CPU: {outcome}",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    check_prerequisites()
    cells = plan(settings.grid, args.only)
    estimate = len(cells) * (settings.duration + settings.warmup + _OVERHEAD_SECONDS) / 60
    print(f"bench.dataplane: {len(cells)} cells, about {estimate:.0f} min", file=sys.stderr)
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-dataplane-") as tmp:
        for index, planned in enumerate(cells, 1):
            workdir = Path(tmp) / str(index)
            workdir.mkdir()
            measurement = measure_quietly(planned, settings, workdir)
            result = report.Result(
                planned.app.name, planned.workload.name, planned.cell, measurement
            )
            progress(index, len(cells), started, planned, result)
            results.append(result)
    info = report.RunInfo(
        command=shlex.join(
            [".venv/bin/python", "-m", "bench.dataplane", *(sys.argv[1:] if argv is None else argv)]
        ),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        duration_seconds=settings.duration,
        warmup_seconds=settings.warmup,
        grid=settings.grid,
        elapsed_seconds=time.monotonic() - started,
    )
    markdown = report.render(results, info)
    print(markdown)
    if args.write is not None:
        report.write(args.write, markdown)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
