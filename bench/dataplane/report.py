"""The results as Markdown: method, machine, one table per app and workload, and the ratios that
say whether Herd's rules hold."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench import markdown
from bench.dataplane.accounting import ATTEMPTS, IDLE_BELOW, NOISY_ABOVE
from bench.dataplane.load import WORKLOADS, WRK_THREADS, WRK_TIMEOUT_SECONDS, Measurement
from bench.dataplane.setups import DEFAULTS, GRID, HERD_AUTO, Cell, Grid
from herd.serving import tuning

#: Its section of the shared benchmarks file, between `<!-- bench.dataplane: ... -->` markers.
SECTION = "dataplane"
#: Grid cells this close to the best are within run-to-run noise of it.
NEAR_BEST = 0.95
#: Herd's auto configuration below this fraction of the best grid cell is flagged.
FLAG_BELOW = 0.9


@dataclass(frozen=True)
class ScalingTarget:
    """What the second CPU must bring Herd's auto configuration (issue #13)."""

    ratio: float  # req/s at 2 CPUs ÷ at 1 CPU, at least
    busiest_share: float | None = None  # of the busiest worker at 2 CPUs, at most


#: By (app, workload); the others have none.
SCALING_TARGETS = {
    ("fastapi", "io"): ScalingTarget(1.8, busiest_share=0.6),
    ("flask", "io"): ScalingTarget(1.7),
}
_PACKAGES = ("gunicorn", "uvicorn", "uvicorn-worker", "flask", "fastapi", "gevent")


@dataclass(frozen=True)
class Result:
    app: str
    workload: str
    cell: Cell
    measurement: Measurement

    @property
    def rate(self) -> float:
        return self.measurement.requests_per_second

    @property
    def ok(self) -> bool:
        return not self.measurement.failure


@dataclass(frozen=True)
class RunInfo:
    command: str
    date: str
    duration_seconds: int
    warmup_seconds: int
    grid: Grid
    elapsed_seconds: float


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    # `wrk -v` prints its version and usage, then exits non-zero.
    output = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10).stdout
    return output.splitlines()[0].split(" Copyright")[0] if output else "wrk, version unknown"


def _noisy_cells(results: Sequence[Result]) -> str:
    noisy = [
        f"{r.app}/{r.workload} {r.cell.setup.label} at {r.cell.setup.cpus} CPU "
        f"({r.measurement.foreign_cpu_share:.0%})"
        for r in results
        if r.measurement.foreign_cpu_share > NOISY_ABOVE
    ]
    return "; ".join(noisy) or "none"


def _retries(results: Sequence[Result]) -> str:
    repeated = sum(1 for r in results if r.measurement.attempts > 1)
    waited = sum(r.measurement.idle_wait_seconds for r in results)
    return (
        f"{repeated} of {len(results)} cells were measured more than once, and the run waited "
        f"{waited / 60:.1f} min for other load to end."
    )


def machine_lines(info: RunInfo, results: Sequence[Result]) -> list[str]:
    packages = ", ".join(f"{name} {_version(name)}" for name in _PACKAGES)
    return [
        f"- Date: {info.date}; total run time {info.elapsed_seconds / 60:.1f} min",
        f"- Command: `{info.command}`",
        f"- Machine: {os.cpu_count()} CPUs (`nproc`), {markdown.cpu_model()}, "
        f"Linux {platform.release()}",
        f"- Python {platform.python_version()}; {packages}; {_wrk_version()}",
        f"- Other load: a cell starts once the machine is under {IDLE_BELOW:.0%} busy and is "
        f"measured again ({ATTEMPTS} attempts at most, the quietest counts) when more than "
        f"{NOISY_ABOVE:.0%} of all CPU "
        "time during it was busy outside the bench's processes (other processes, and kernel work"
        f" charged to none, such as part of the loopback networking). {_retries(results)} "
        f"Cells still above {NOISY_ABOVE:.0%}: {_noisy_cells(results)}",
    ]


def _set(values: Sequence[int]) -> str:
    return "{" + ", ".join(map(str, values)) + "}"


def _max_requests() -> str:
    """Herd's recycling per worker class, as this run rendered it."""
    jitter = tuning.MAX_REQUESTS_JITTER_FRACTION
    return ", ".join(
        f"{worker_class} {limit} (+ up to {jitter:.0%})" if limit else f"{worker_class} off"
        for worker_class, limit in tuning.AUTO_MAX_REQUESTS.items()
    )


def method_lines(info: RunInfo) -> list[str]:
    connections = ", ".join(
        f"{w.name} `{' + '.join(w.paths)}` × {w.connections}" for w in WORKLOADS
    )
    grid = info.grid
    return [
        f"- Each cell: a fresh server, {info.warmup_seconds} s of warm-up load (discarded), one "
        "health check that waits until the server has answered what the warm-up left queued, "
        f"then `wrk -t{WRK_THREADS} -c<connections> -d{info.duration_seconds}s "
        f"--timeout={WRK_TIMEOUT_SECONDS}s --latency` on loopback.",
        "- p50 and p99 are wrk's, over the measured run. wrk is a closed loop: once a "
        "configuration is saturated, the mean latency is connections ÷ req/s (queueing).",
        "- busiest worker: one worker's share of all requests answered during the measured run "
        "(Herd's `http_requests_total`, per worker file). wrk opens its connections at once and "
        "keeps them alive, and a connection stays with the worker that accepted it. restarts: "
        "workers gunicorn booted during the run (`--max-requests`); a restarted worker's counts "
        "are archived and count for no single worker, so the share is then a lower bound.",
        f"- Workloads, paths × connections per CPU of the server: {connections}; a 2-CPU "
        "server gets twice the connections, so that the client does not cap it (256 "
        "connections of 50 ms cap io at 5,120 req/s). Mixed alternates its two paths "
        "request by request (a Lua script), so half the requests wait and half compute.",
        "- CPUs: a 1-CPU server runs under `taskset -c 1` and wrk under `taskset -c 0`; a 2-CPU "
        "server gets both cores and wrk shares them (its CPU use comes off the server's).",
        "- Herd auto and the grid run the operator's own rendering (`herd.serving.tuning.resolve`, "
        "`herd.serving.workload.server_args` for a WebService with `resources.limits.cpu` 1 or 2 "
        f"and no memory limit), bound to 127.0.0.1: keep-alive {tuning.AUTO_KEEPALIVE_SECONDS} s,"
        f" `--max-requests` {_max_requests()}, Herd's gunicorn hooks and metrics. gunicorn "
        "defaults: only `--config` (Herd's hooks, required by herd-serve) and `--bind`.",
        f"- Grid at 1 CPU: sync × {_set(grid.sync_workers)}; gthread {_set(grid.gthread_workers)} "
        f"workers × {_set(grid.gthread_threads)} threads; gevent × {_set(grid.gevent_workers)} "
        f"(Flask, when gevent is installed); uvicorn worker × {_set(grid.uvicorn_workers)} "
        "(FastAPI).",
        "- Apps: `herd_examples.flask_app` and `herd_examples.fastapi_app`, as the sample "
        "images run them. `/cpu?ms=N` computes for N ms of the thread's own CPU time, so a "
        "preempted request still costs its full N ms.",
    ]


def _number(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _ratio(numerator: Result | None, denominator: Result | None) -> str:
    if numerator is None or denominator is None or denominator.rate == 0:
        return "n/a"
    return f"{numerator.rate / denominator.rate:.2f}×"


def _configuration(result: Result, best: Result | None) -> str:
    setup = result.cell.setup
    names = []
    for role in result.cell.roles:
        if role == DEFAULTS and setup.worker_class == "uvicorn":
            names.append(f"{DEFAULTS} (uvicorn worker: sync cannot serve ASGI)")
        else:
            names.append(f"**{role}**" if role == HERD_AUTO else role)
    label = " = ".join(names)
    return f"{label} (best grid cell)" if result is best else label


def _share(result: Result) -> str:
    share = result.measurement.busiest_worker_share
    if result.cell.setup.workers == 1 or math.isnan(share):
        return "–"
    return f"{share:.0%}"


def _errors(measurement: Measurement) -> str:
    if measurement.failure:
        return f"failed: {measurement.failure.splitlines()[0]}"
    return ", ".join(f"{kind} {n}" for kind, n in measurement.socket_errors.items()) or "0"


def table(results: Sequence[Result]) -> list[str]:
    best = best_grid_cell(results)
    lines = [
        "| configuration | worker class | workers | threads | CPUs | req/s | p50 ms | p99 ms "
        "| busiest worker | restarts | non-2xx/3xx | socket errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        setup, measured = result.cell.setup, result.measurement
        threads = str(setup.threads) if setup.worker_class == "gthread" else "–"
        lines.append(
            f"| {_configuration(result, best)} | {setup.worker_class} | {setup.workers} "
            f"| {threads} | {setup.cpus} | {_number(measured.requests_per_second)} "
            f"| {_number(measured.p50_ms)} | {_number(measured.p99_ms)} | {_share(result)} "
            f"| {measured.worker_restarts} | {measured.non_2xx_3xx} | {_errors(measured)} |"
        )
    return lines


def best_grid_cell(results: Sequence[Result]) -> Result | None:
    grid = [r for r in results if r.ok and GRID in r.cell.roles]
    return max(grid, key=lambda r: r.rate, default=None)


def _role_at(results: Sequence[Result], role: str, cpus: int) -> Result | None:
    return next(
        (r for r in results if r.ok and role in r.cell.roles and r.cell.setup.cpus == cpus),
        None,
    )


def _label(result: Result | None) -> str:
    if result is None:
        return "not measured"
    return f"{result.cell.setup.label}, {_number(result.rate)}"


def scaling_verdict(
    target: ScalingTarget | None, auto1: Result | None, auto2: Result | None
) -> str:
    """Whether Herd auto at 2 CPUs met its target against Herd auto at 1 CPU, in this run."""
    if target is None:
        return "–"
    if auto1 is None or auto2 is None or auto1.rate == 0:
        return "not measured"
    wanted = [f"≥ {target.ratio:.2f}×"]
    # The ratio as the row shows it (`_ratio`), so that the verdict reads off the row.
    missed = round(auto2.rate / auto1.rate, 2) < target.ratio
    if target.busiest_share is not None:
        wanted.append(f"busiest ≤ {target.busiest_share:.0%}")
        # Not a number with one worker, or when no worker's counts were read: not met either.
        share = auto2.measurement.busiest_worker_share
        missed = missed or not share <= target.busiest_share
    return f"{'**missed**' if missed else 'met'} ({', '.join(wanted)})"


def summary_row(app: str, workload: str, results: Sequence[Result]) -> str:
    best = best_grid_cell(results)
    auto1, auto2 = _role_at(results, HERD_AUTO, 1), _role_at(results, HERD_AUTO, 2)
    defaults1, defaults2 = _role_at(results, DEFAULTS, 1), _role_at(results, DEFAULTS, 2)
    busiest2 = "not measured" if auto2 is None else _share(auto2)
    verdict = scaling_verdict(SCALING_TARGETS.get((app, workload)), auto1, auto2)
    return (
        f"| {app} | {workload} | {_label(best)} | {_label(auto1)} | {_ratio(auto1, best)} "
        f"| {_ratio(auto1, defaults1)} | {_label(auto2)} | {_ratio(auto2, defaults2)} "
        f"| {_ratio(auto2, auto1)} | {busiest2} | {verdict} |"
    )


def findings(app: str, workload: str, results: Sequence[Result]) -> list[str]:
    """Bullets for what a summary row cannot show: ties with the best cell, latency, flags."""
    best = best_grid_cell(results)
    auto1 = _role_at(results, HERD_AUTO, 1)
    if best is None or auto1 is None:
        return [f"- {app}/{workload}: no comparison, a cell failed (see its table)."]
    near = [
        r.cell.setup.label
        for r in results
        if r.ok and GRID in r.cell.roles and r is not best and r.rate >= NEAR_BEST * best.rate
    ]
    line = (
        f"- {app}/{workload}: best {best.cell.setup.label} (p50 {_number(best.measurement.p50_ms)}"
        f", p99 {_number(best.measurement.p99_ms)} ms); Herd auto at 1 CPU "
        f"{auto1.cell.setup.label} (p50 {_number(auto1.measurement.p50_ms)}, "
        f"p99 {_number(auto1.measurement.p99_ms)} ms)"
    )
    if near:
        line += f"; within {1 - NEAR_BEST:.0%} of the best: {', '.join(near)}"
    if auto1.rate < FLAG_BELOW * best.rate:
        line += f". **Herd auto is below {FLAG_BELOW:.0%} of the best cell here.**"
    return [line]


def _groups(results: Sequence[Result]) -> dict[tuple[str, str], list[Result]]:
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.app, result.workload), []).append(result)
    return groups


def render(results: Sequence[Result], info: RunInfo) -> str:
    groups = _groups(results)
    lines = [
        "## Data plane: app-server tuning (bench/dataplane)",
        "",
        "### Setup",
        "",
        *machine_lines(info, results),
        "",
        "### Method",
        "",
        *method_lines(info),
    ]
    for (app, workload), group in groups.items():
        lines += ["", f"### {app}, {workload}", "", *table(group)]
    lines += [
        "",
        "### What this says about the rules",
        "",
        "req/s and ratios of req/s; ÷ compares the cell on the left with the one named. 2-CPU "
        "target: what Herd auto at 2 CPUs must reach against Herd auto at 1 CPU, both of this "
        "run (req/s ratio, and the busiest worker's share of the requests at 2 CPUs).",
        "",
        "| app | workload | best grid cell, 1 CPU | Herd auto, 1 CPU | ÷ best | ÷ defaults "
        "| Herd auto, 2 CPUs | ÷ defaults, 2 CPUs | ÷ Herd auto, 1 CPU "
        "| busiest worker, 2 CPUs | 2-CPU target |",
        "|---|---|---|---|---:|---:|---|---:|---:|---:|---|",
        *(summary_row(app, workload, group) for (app, workload), group in groups.items()),
        "",
    ]
    for (app, workload), group in groups.items():
        lines += findings(app, workload, group)
    return "\n".join(lines) + "\n"


def write(path: Path, generated: str) -> None:
    """Replaces this benchmark's generated section of `path` (bench/markdown.py), keeping the
    prose and the other benchmarks' sections; a new file gets a title and the section."""
    markdown.replace_section(path, SECTION, generated)
