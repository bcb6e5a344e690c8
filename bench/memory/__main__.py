"""Starts the example apps under herd-serve on loopback and measures their memory:

- per-worker PSS after a warm-up, with and without `--preload` (Herd's `server.preload`);
- a leaking path's growth over many requests, with and without `--max-requests`.

    .venv/bin/python -m bench.memory [--workers 4] [--leak-requests 2000] [--write FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness.appservers import (
    GTHREAD,
    UVICORN_WORKER,
    HerdServer,
    free_port,
    gunicorn_args,
    herd_server,
    send_concurrently,
)
from bench.markdown import replace_section, run_lines, table
from bench.memory import leaky
from herd_runtime.memory import Memory, children, memory

MIB = 2**20
#: Every route of the example apps, so the warm-up touches what requests touch.
WARMUP_PATHS = ("/", "/io?ms=1", "/cpu?ms=1", "/items/7") * 50
#: The leak case's limit: low enough that 2,000 requests over 4 workers recycle each a few times.
LEAK_MAX_REQUESTS = 200
#: Time for the last replacements to boot before the final reading.
SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class App:
    name: str
    worker_class: str
    #: The example app, and the same with /leak (bench.memory.leaky).
    ref: str
    leaky_ref: str


APPS = (
    App("flask", GTHREAD, "herd_examples.flask_app:app", "bench.memory.leaky:wsgi()"),
    App("fastapi", UVICORN_WORKER, "herd_examples.fastapi_app:app", "bench.memory.leaky:asgi()"),
)


@dataclass(frozen=True)
class Pod:
    """One gunicorn's processes, as read at one moment."""

    arbiter: Memory
    workers: tuple[Memory, ...]

    @property
    def total_pss(self) -> int:
        return self.arbiter.pss + sum(w.pss for w in self.workers)

    def mean(self, field: str) -> float:
        return sum(getattr(w, field) for w in self.workers) / len(self.workers)


def read_pod(server: HerdServer) -> Pod:
    arbiter = server.process.popen.pid  # herd-serve exec-ed gunicorn: the same pid
    return Pod(memory(arbiter), tuple(memory(pid) for pid in children(arbiter)))


def args_for(ref: str, app: App, port: int, workers: int, max_requests: int) -> list[str]:
    return gunicorn_args(
        ref,
        port,
        app.worker_class,
        workers,
        max_requests=max_requests,
        max_requests_jitter=max_requests // 10,
    )


def measure_preload(app: App, preload: bool, workers: int, workdir: Path) -> Pod:
    port = free_port()
    args = args_for(app.ref, app, port, workers, max_requests=0)
    if preload:
        args.insert(-1, "--preload")
    with herd_server(args, workdir, port, name=f"{app.name}-preload-{preload}") as server:
        send_concurrently(port, WARMUP_PATHS)
        time.sleep(0.5)
        return read_pod(server)


@dataclass(frozen=True)
class Leak:
    before: Pod
    after: Pod
    restarts: int


def measure_leak(app: App, max_requests: int, workers: int, requests: int, workdir: Path) -> Leak:
    port = free_port()
    args = args_for(app.leaky_ref, app, port, workers, max_requests)
    with herd_server(args, workdir, port, name=f"{app.name}-leak-{max_requests}") as server:
        send_concurrently(port, WARMUP_PATHS)
        time.sleep(0.5)
        before = read_pod(server)
        load = send_concurrently(port, [leaky.LEAK_PATH] * requests, attempts=1)
        assert load.statuses == {200: requests}, load
        time.sleep(SETTLE_SECONDS)
        after = read_pod(server)
        restarts = server.process.log().count("Booting worker with pid") - workers
    return Leak(before, after, restarts)


def mib(value: float) -> str:
    return f"{value / MIB:.1f}"


def report(
    argv: list[str],
    workers: int,
    requests: int,
    preloads: dict[tuple[App, bool], Pod],
    leaks: dict[tuple[App, int], Leak],
    seconds: float,
) -> str:
    lines = [
        "## Memory: preload and worker recycling (bench/memory)",
        "",
        *run_lines("bench.memory", argv),
        f"- Run time: {seconds:.0f} s",
        f"- Setup: herd-serve with Herd's gunicorn config on loopback, {workers} workers, "
        "gthread with 4 threads (Flask) or the uvicorn worker (FastAPI, run by herd-serve as "
        "herd_runtime.recycling's). Memory is PSS from /proc/PID/smaps_rollup: a page shared "
        "by n processes counts 1/n in each, so the PSS of all processes adds up to what the "
        "pod holds. Read after 200 warm-up requests over every route.",
        "",
        "### Per-worker memory, with and without --preload",
        "",
        *table(
            [
                "app",
                "preload",
                "arbiter PSS (MiB)",
                "worker PSS, mean (MiB)",
                "worker private, mean (MiB)",
                "all processes PSS (MiB)",
            ],
            [
                [
                    app.name,
                    "yes" if preload else "no",
                    mib(pod.arbiter.pss),
                    mib(pod.mean("pss")),
                    mib(pod.mean("private")),
                    mib(pod.total_pss),
                ]
                for (app, preload), pod in preloads.items()
            ],
            "llrrrr",
        ),
        "",
        f"### A leak of {leaky.LEAK_BYTES // 1024} KiB per request, with and without "
        "--max-requests",
        "",
        f"{requests} requests to /leak (bench.memory.leaky), after the warm-up; "
        f"`--max-requests {LEAK_MAX_REQUESTS} --max-requests-jitter {LEAK_MAX_REQUESTS // 10}` "
        f"or 0 (off). Read again {SETTLE_SECONDS:g} s after the last request.",
        "",
        *table(
            [
                "app",
                "max requests",
                "worker restarts",
                "PSS before (MiB)",
                "PSS after (MiB)",
                "growth (MiB)",
            ],
            [
                [
                    app.name,
                    str(limit) if limit else "off",
                    str(leak.restarts),
                    mib(leak.before.total_pss),
                    mib(leak.after.total_pss),
                    mib(leak.after.total_pss - leak.before.total_pss),
                ]
                for (app, limit), leak in leaks.items()
            ],
            "llrrrr",
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--leak-requests", type=int, default=2000, help="requests to /leak (default 2000)"
    )
    parser.add_argument("--write", type=Path, metavar="FILE", help="write the report to FILE")
    raw = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(raw)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workdir = Path(tmp)
        preloads = {
            (app, preload): measure_preload(app, preload, args.workers, workdir)
            for app in APPS
            for preload in (False, True)
        }
        leaks = {
            (app, limit): measure_leak(app, limit, args.workers, args.leak_requests, workdir)
            for app in APPS
            for limit in (0, LEAK_MAX_REQUESTS)
        }
    text = report(
        raw, args.workers, args.leak_requests, preloads, leaks, time.monotonic() - started
    )
    print(text)
    if args.write:
        replace_section(args.write, "memory", text)


if __name__ == "__main__":
    main()
