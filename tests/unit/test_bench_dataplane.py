"""bench.dataplane's pure parts: the 2-CPU targets in the summary, the load per CPU, --only."""

from __future__ import annotations

import argparse
import math

import pytest

from bench.dataplane.__main__ import only_groups
from bench.dataplane.load import WORKLOADS, Measurement
from bench.dataplane.report import Result, summary_row
from bench.dataplane.setups import HERD_AUTO, Cell, Setup


def auto(app: str, cpus: int, workers: int, rate: float, busiest: float = math.nan) -> Result:
    setup = Setup("uvicorn", workers, 1, cpus, ())
    measurement = Measurement(rate, 70.0, 130.0, 0, busiest_worker_share=busiest)
    return Result(app, "io", Cell((HERD_AUTO,), setup), measurement)


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_the_summary_says_the_asgi_target_is_met_with_this_runs_ratio() -> None:
    row = cells(
        summary_row(
            "fastapi", "io", [auto("fastapi", 1, 1, 3000), auto("fastapi", 2, 2, 5700, 0.52)]
        )
    )
    assert row[-3:] == ["1.90×", "52%", "met (≥ 1.80×, busiest ≤ 60%)"]


def test_the_verdict_reads_the_ratio_as_the_row_shows_it() -> None:
    results = [auto("fastapi", 1, 1, 799), auto("fastapi", 2, 2, 1437, 0.51)]  # 1.7985
    assert cells(summary_row("fastapi", "io", results))[-3] == "1.80×"
    assert cells(summary_row("fastapi", "io", results))[-1].startswith("met")


@pytest.mark.parametrize(
    ("rate", "busiest"),
    [(5000, 0.52), (5700, 0.96), (5700, math.nan)],
    ids=["too-slow", "one-worker-busy", "no-counts"],
)
def test_the_summary_says_the_asgi_target_is_missed(rate: float, busiest: float) -> None:
    row = cells(
        summary_row(
            "fastapi", "io", [auto("fastapi", 1, 1, 3000), auto("fastapi", 2, 2, rate, busiest)]
        )
    )
    assert row[-1] == "**missed** (≥ 1.80×, busiest ≤ 60%)"


def test_the_wsgi_io_target_is_the_ratio_alone() -> None:
    row = cells(
        summary_row("flask", "io", [auto("flask", 1, 3, 2400), auto("flask", 2, 5, 4200, 0.9)])
    )
    assert row[-1] == "met (≥ 1.70×)"


def test_a_workload_without_a_target_and_a_cell_not_measured() -> None:
    assert cells(summary_row("flask", "cpu", [auto("flask", 1, 1, 90)]))[-2:] == [
        "not measured",
        "–",
    ]
    assert cells(summary_row("flask", "io", [auto("flask", 1, 3, 2400)]))[-1] == "not measured"


def test_a_two_cpu_server_gets_twice_the_connections() -> None:
    io = next(w for w in WORKLOADS if w.name == "io")
    assert (io.for_cpus(1).connections, io.for_cpus(2).connections) == (256, 512)


def test_only_takes_known_apps_and_workloads() -> None:
    assert only_groups("fastapi/io, flask/io") == {("fastapi", "io"), ("flask", "io")}
    with pytest.raises(argparse.ArgumentTypeError, match="unknown django/io"):
        only_groups("django/io,flask/io")
