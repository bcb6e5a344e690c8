"""What archiving dead workers' files buys: the scrape cost of prometheus_client issue #367
(~6,800 files after many max_requests restarts) against the same totals in two files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

from herd_runtime import multiproc
from herd_runtime.http_metrics import DURATION_BUCKETS

DEAD_WORKERS = 3400  # two files each: the 6,800 files of client_python#367
ROUTES = ("/", "/io", "/cpu", "/items/<int:item_id>")


def write_dead_worker(directory: Path, pid: int) -> None:
    """The files one worker leaves after serving a few requests on each route."""
    requests = MmapedDict(str(directory / f"counter_{pid}.db"))
    durations = MmapedDict(str(directory / f"histogram_{pid}.db"))
    duration = "http_request_duration_seconds"
    for route in ROUTES:
        labels = ["method", "code", "route"], ["GET", "200", route]
        requests.write_value(mmap_key("http_requests", "http_requests_total", *labels, ""), 5, 0)
        for bound in (*DURATION_BUCKETS, float("inf")):
            key = mmap_key(
                duration,
                f"{duration}_bucket",
                ["method", "route", "le"],
                ["GET", route, str(bound)],
                "",
            )
            durations.write_value(key, 1, 0)
        key = mmap_key(duration, f"{duration}_sum", ["method", "route"], ["GET", route], "")
        durations.write_value(key, 0.1, 0)
    requests.close()
    durations.close()


def timed_scrape(directory: Path) -> tuple[float, set[bytes]]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    started = time.perf_counter()
    text = generate_latest(registry)
    return time.perf_counter() - started, set(text.splitlines())


@pytest.mark.timeout(120)
def test_archiving_keeps_scrapes_cheap_after_many_restarts(tmp_path: Path, record_property) -> None:
    for pid in range(100_000, 100_000 + DEAD_WORKERS):
        write_dead_worker(tmp_path, pid)
    files_before = len(list(tmp_path.iterdir()))
    seconds_before, exposition_before = timed_scrape(tmp_path)

    multiproc.compact_dead_processes(tmp_path, is_alive=lambda pid: False)
    seconds_after, exposition_after = timed_scrape(tmp_path)

    write_dead_worker(tmp_path, 99_999)
    started = time.perf_counter()
    multiproc.compact_dead_processes(tmp_path, is_alive=lambda pid: False)
    one_exit_seconds = time.perf_counter() - started

    record_property("files_before", files_before)
    record_property("scrape_ms_before", round(seconds_before * 1000, 1))
    record_property("scrape_ms_after", round(seconds_after * 1000, 2))
    record_property("archive_one_worker_ms", round(one_exit_seconds * 1000, 2))
    print(
        f"{files_before} files: scrape {seconds_before * 1000:.0f} ms; archived into "
        f"{len(list(tmp_path.iterdir()))} files: scrape {seconds_after * 1000:.1f} ms; "
        f"archiving one more worker: {one_exit_seconds * 1000:.1f} ms"
    )
    assert exposition_after == exposition_before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    assert seconds_after < seconds_before / 10
