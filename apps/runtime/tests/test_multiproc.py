"""Archiving dead workers' metric files: totals unchanged, files gone, live workers untouched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from herd_runtime import multiproc
from herd_runtime.errors import StartupError
from herd_runtime.metrics_server import multiprocess_renderer

ALIVE, DEAD, ALSO_DEAD = 101, 202, 303


Sample = tuple[str, str, dict[str, str], float]  # metric, sample name, labels, value


def write(directory: Path, name: str, samples: list[Sample]) -> None:
    """A file as prometheus_client writes it."""
    store = MmapedDict(str(directory / name))
    for metric, sample, labels, value in samples:
        key = mmap_key(metric, sample, list(labels), list(labels.values()), "help")
        store.write_value(key, value, 0.0)
    store.close()


def exposition(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample a scrape would show, in no particular order."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    return parsed(generate_latest(registry).decode())


def parsed(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    duration = "http_request_duration_seconds"
    for pid, scale in ((ALIVE, 1), (DEAD, 10), (ALSO_DEAD, 100)):
        route = {"route": "/a"}
        write(
            tmp_path, f"counter_{pid}.db", [("http_requests", "http_requests_total", route, scale)]
        )
        write(
            tmp_path,
            f"histogram_{pid}.db",
            [
                (duration, f"{duration}_bucket", {**route, "le": "0.1"}, 2 * scale),
                (duration, f"{duration}_bucket", {**route, "le": "+Inf"}, 0),
                (duration, f"{duration}_sum", route, 0.5 * scale),
            ],
        )
        write(tmp_path, f"gauge_livesum_{pid}.db", [("inflight", "inflight", route, 1)])
    return tmp_path


def test_compaction_keeps_totals_and_drops_dead_files(directory: Path) -> None:
    before = exposition(directory)
    multiproc.compact_dead_processes(directory, is_alive=lambda pid: pid == ALIVE)
    assert exposition(directory) == before
    assert sorted(p.name for p in directory.glob("*.db")) == [
        "counter_101.db",
        "counter_archive.db",
        "gauge_livesum_101.db",
        "gauge_livesum_202.db",  # gauges are mark_process_dead's business
        "gauge_livesum_303.db",
        "histogram_101.db",
        "histogram_archive.db",
    ]


def test_compaction_adds_to_an_existing_archive(directory: Path) -> None:
    before = exposition(directory)
    multiproc.compact_dead_processes(directory, is_alive=lambda pid: pid != DEAD)
    multiproc.compact_dead_processes(directory, is_alive=lambda pid: False)
    assert exposition(directory) == before
    assert sorted(p.name for p in directory.glob("*_*.db") if "gauge" not in p.name) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    assert not list(directory.glob("*.partial"))


def test_retire_process_removes_live_gauges_and_archives_counts(directory: Path) -> None:
    # Every pid in the fixture is made up, so none runs: all of them get archived.
    multiproc.retire_process(directory, DEAD)
    names = {p.name for p in directory.iterdir()}
    assert "gauge_livesum_202.db" not in names
    assert {"counter_archive.db", "histogram_archive.db"} <= names
    assert not any(name.startswith(("counter_1", "counter_2", "counter_3")) for name in names)


def test_process_is_alive() -> None:
    assert multiproc.process_is_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not multiproc.process_is_alive(child.pid)


def test_reset_directory_removes_files_of_a_previous_run(directory: Path) -> None:
    multiproc.reset_directory(directory)
    assert list(directory.iterdir()) == []


def test_check_writable_names_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="does not exist: mount a writable emptyDir"):
        multiproc.check_writable(tmp_path / "absent")
    multiproc.check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_a_scrape_skips_a_file_a_worker_has_not_sized_yet(directory: Path) -> None:
    # prometheus_client creates a file empty, then truncates it to its size: the stock
    # collector fails on it (unpack_from on 0 bytes), a scrape must not.
    before = exposition(directory)
    (directory / f"gauge_livesum_{ALIVE + 1}.db").touch()
    body, _ = multiprocess_renderer(directory)(None)
    assert parsed(body.decode()) == before
