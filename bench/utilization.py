"""bench/utilization: the built-in autoscaler's decision after a load step, on RPM alone and with
targetUtilization 0.7, from the same real signals, without the cluster.

One herd-runtime pod (Flask, gthread 1 worker x 8 threads: capacity 8) on loopback, Debian's
Prometheus scraping it every second with the labels pod discovery gives, load from `hey`. After
a warm-up under a low load, a step; then every second the operator's own queries
(herd.metric_sources) and its pure decision (herd.autoscaling.decide) for 1 replica, once per
spec. Two steps:

- fast: bench/autoscale's, 480 -> 3000 requests/min of /io?ms=20 (5 replicas' worth at 600);
- slow: 2 -> 12 clients each holding /io?ms=1000 open: about 480 requests/min, under the RPM
  target, while 8 threads cannot serve 12 requests at once (2 pods are needed, 3 at 70 %).

The decision is evaluated every second, so its latency is the earliest one a decision could
have; the operator decides every 15 s (`--autoscale-interval`), which adds 0-15 s. Replicas do
not change here (one pod stands for the service), so "wanted" is the first scale-out decision's
count (the scale-up policy allows up to 5 from 1), the overshoot measure.

    .venv/bin/python -m bench.utilization
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bench import rig
from bench.harness import prometheus as prom
from bench.harness.appservers import GTHREAD, free_port, gunicorn_args, herd_server
from bench.markdown import table
from herd.autoscaling.decide import PANIC_WINDOW, STABLE_WINDOW, Observations, decide
from herd.metric_sources import APP, Target
from herd.model import AutoscalingSpec
from herd.prometheus import Prometheus

NAMESPACE, NAME = "bench", "web"
THREADS = 8
RPM_ONLY = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=20)
WITH_UTILIZATION = replace(RPM_ONLY, target_utilization=0.7)
#: The 1m windows then hold only the low load.
WARMUP = 65.0
OBSERVE = 45.0


@dataclass(frozen=True)
class Step:
    name: str  # with what it needs
    path: str
    low: tuple[int, int]  # hey workers, requests/s each
    step: tuple[int, int]


STEPS = (
    Step("fast: 480 → 3000 RPM of `/io?ms=20` (5 replicas' worth)", "/io?ms=20", (1, 8), (3, 14)),
    Step(
        "slow: 2 → 12 clients holding `/io?ms=1000` (8 threads: 2 pods needed, 3 at 70 %)",
        "/io?ms=1000",
        (2, 1),
        (10, 1),
    ),
)
SPECS = (("RPM only", RPM_ONLY), ("targetUtilization 0.7", WITH_UTILIZATION))


def observations(prometheus: Prometheus, url: str) -> Observations:
    stable, panic = (Target(NAMESPACE, NAME, window=w) for w in (STABLE_WINDOW, PANIC_WINDOW))
    return Observations(
        prometheus.query(url, APP.requests_per_minute(stable)),
        prometheus.query(url, APP.error_rate(stable)),
        prometheus.query(url, APP.saturation_error_rate(stable)),
        prometheus.query(url, APP.concurrency(stable)),
        prometheus.query(url, APP.in_flight(panic)),
    )


def trial(step: Step, port: int, url: str, prometheus: Prometheus) -> list[list[str]]:
    low = rig.Load.start(port, step.path, *step.low, seconds=WARMUP + OBSERVE + 10)
    try:
        time.sleep(WARMUP)
        load = rig.Load.start(port, step.path, *step.step, seconds=OBSERVE + 5)
        began = time.monotonic()
        first: dict[str, tuple[float, int, str, float | None]] = {}
        try:
            while time.monotonic() - began < OBSERVE and len(first) < len(SPECS):
                seen = observations(prometheus, url)
                for label, spec in SPECS:
                    decision = decide(spec, 1, seen, (), time.time(), THREADS)
                    if label not in first and decision.replicas > 1:
                        first[label] = (
                            time.monotonic() - began,
                            decision.replicas,
                            decision.reason,
                            decision.rpm,
                        )
                time.sleep(1.0)
        finally:
            load.stop()
    finally:
        low.stop()
    rows = []
    for index, (label, _) in enumerate(SPECS):
        shown = step.name if index == 0 else ""
        if label in first:
            seconds, wanted, reason, rpm = first[label]
            rows.append([shown, label, f"{seconds:.1f}", str(wanted), reason, f"{rpm:.0f}"])
        else:
            rows.append([shown, label, f"none in {OBSERVE:.0f} s", "1", "–", "–"])
    return rows


def main() -> None:
    port = free_port()
    args = gunicorn_args(rig.APP, port, GTHREAD, 1, threads=THREADS)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as workdir, herd_server(args, Path(workdir), port) as server:
        targets = [(server.metrics_port, rig.pod_labels(NAMESPACE, NAME))]
        with prom.running(Path(workdir) / "prometheus", free_port(), targets) as prometheus:
            client = Prometheus()
            for step in STEPS:
                rows += trial(step, port, prometheus.url, client)
    header = ("step", "spec", "first scale-out, s after the step", "wanted", "reason", "RPM then")
    print("\n".join(table(header, rows, "llrrlr")))


if __name__ == "__main__":
    main()
