"""App servers pinned to CPUs, started and stopped with bench/harness/appservers' helpers."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import appservers
from herd_runtime.multiproc import merged_values

#: The sample counting every answered request, in each worker's counter file.
_REQUESTS_SAMPLE = "http_requests_total"
#: What gunicorn's arbiter logs (at its default level, info) for each worker it starts.
_WORKER_BOOTED = "Booting worker with pid"

#: The command line alone decides the configuration: neither variable may leak in from the shell.
_IGNORED_ENV = ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS")


def cpu_sets(cpus: int) -> tuple[str, str | None]:
    """The cores for a server limited to `cpus` (the last ones) and for wrk (the first core
    when the server leaves it free; else None: wrk shares the server's cores)."""
    cores = sorted(os.sched_getaffinity(0))
    server = cores[-cpus:]
    wrk = None if cores[0] in server else str(cores[0])
    return ",".join(map(str, server)), wrk


def on_loopback(args: Sequence[str], port: int) -> list[str]:
    """The operator binds every interface of the pod; the bench listens on loopback only."""
    at = list(args).index("--bind") + 1
    return [*args[:at], f"{appservers.LOOPBACK}:{port}", *args[at + 1 :]]


@contextmanager
def pinned_server(
    args: Sequence[str], cores: str, workdir: Path
) -> Iterator[appservers.HerdServer]:
    """herd-serve with `args` under `taskset -c cores` (affinity is inherited by gunicorn's
    workers), healthy on a free loopback port; stopped, with its process group, on exit.
    Like appservers.start_herd_server, which has no way to prefix the command."""
    port = appservers.free_port()
    metrics_port = appservers.free_port()
    metrics_dir = workdir / f"metrics-{port}"
    metrics_dir.mkdir()
    env = appservers.herd_env(metrics_dir, metrics_port)
    for name in _IGNORED_ENV:
        env.pop(name, None)
    command = ["taskset", "-c", cores, str(appservers.HERD_SERVE), *on_loopback(args, port)]
    process = appservers.start_process(command, workdir / f"server-{port}.log", env=env)
    server = appservers.HerdServer(process, port, metrics_port, metrics_dir)
    try:
        server.wait_healthy()
        yield server
    finally:
        process.stop()


def drain(server: appservers.HerdServer, timeout: float = 60) -> None:
    """Waits for one health check: it queues behind requests a finished wrk left unanswered
    (a single sync worker has 256 × 50 ms of them), so the next run starts on an idle server."""
    appservers.get(server.port, "/healthz", timeout=timeout)


@dataclass(frozen=True)
class WorkerCounts:
    """Requests answered per counter file (`<pid>`, or `archive` for dead workers' sums) and
    workers booted so far (gunicorn logs each boot, restarts included)."""

    requests: dict[str, float]
    boots: int


@dataclass(frozen=True)
class WorkerSpread:
    busiest_share: float  # of all requests answered in between, by one live worker
    restarts: int


def worker_counts(server: appservers.HerdServer) -> WorkerCounts:
    requests = {}
    for path in server.multiproc_dir.glob("counter_*.db"):
        try:
            values = merged_values([path])
        except FileNotFoundError:
            continue  # archived since the glob: a worker restarting just now
        requests[path.stem.removeprefix("counter_")] = sum(
            value for key, (value, _) in values.items() if json.loads(key)[1] == _REQUESTS_SAMPLE
        )
    return WorkerCounts(requests, server.process.log().count(_WORKER_BOOTED))


def worker_spread(before: WorkerCounts, after: WorkerCounts) -> WorkerSpread:
    """How evenly the workers shared the load: keep-alive connections stay with the worker that
    accepted them, so workers can sit idle. A worker that restarted in between (max-requests)
    leaves its counts in the archive: they count in the total, not for any one worker."""
    total = sum(after.requests.values()) - sum(before.requests.values())
    live = [
        count - before.requests.get(worker, 0.0)
        for worker, count in after.requests.items()
        if worker.isdigit()
    ]
    share = max(live) / total if live and total > 0 else math.nan
    return WorkerSpread(share, after.boots - before.boots)
