"""bench/reconcile: how fast and how cheaply the operator brings WebServices to Ready.

On the local control plane, with an operator process of its own watching one namespace:
- apply-to-Ready latency (p50, p95, max) for 1 WebService and for 200 applied at once;
- API writes per reconciliation, and writes during 30 s of idling (target: zero);
- the operator's resident memory afterwards.

    .venv/bin/python -m bench.reconcile [--quick] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import markdown, rig

MANIFEST = """---
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: {name}}}
spec:
  image: bench/app:1
  app: app.main:app
  replicas: 1
"""
#: Seconds between two lists of every WebService: each list costs the API server and kubectl
#: CPU, which the operator would lose on this 2-core machine. Also the latencies' resolution.
POLL = 1.0
TARGET_SECONDS = 60  # for 200 WebServices, the target


@dataclass(frozen=True)
class Batch:
    applied: int
    ready: list[float]  # seconds from apply to Ready, of those that became Ready
    reconciles: float
    writes: float


def _ready_times(bench: rig.Bench, names: set[str], started: float, timeout: float) -> list[float]:
    """Seconds from `started` until each WebService first reported Ready=True (polled)."""
    ready: dict[str, float] = {}
    deadline = started + timeout
    while len(ready) < len(names) and time.monotonic() < deadline:
        items = json.loads(bench.kubectl.run("get", "webservices", "-o", "json").stdout)["items"]
        now = time.monotonic() - started
        for item in items:
            name = item["metadata"]["name"]
            conditions = item.get("status", {}).get("conditions", [])
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            if is_ready and name in names:
                ready.setdefault(name, now)
        time.sleep(POLL)
    return sorted(ready.values())


def run_batch(bench: rig.Bench, prefix: str, count: int, timeout: float) -> Batch:
    names = {f"{prefix}-{i:03d}" for i in range(count)}
    reconciles = bench.operator.counter("herd_reconciles_total")
    writes = bench.operator.counter("herd_reconcile_writes_total")
    started = time.monotonic()
    manifests = "".join(MANIFEST.format(name=name) for name in sorted(names))
    bench.kubectl.run("apply", "--server-side", "-f", "-", stdin=manifests)
    ready = _ready_times(bench, names, started, timeout)
    time.sleep(3)  # let the last status writes land before counting
    return Batch(
        count,
        ready,
        bench.operator.counter("herd_reconciles_total") - reconciles,
        bench.operator.counter("herd_reconcile_writes_total") - writes,
    )


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _latency_columns(ready: list[float]) -> list[str]:
    """p50, p95 and max of sorted latencies, or dashes when none became Ready."""
    if not ready:
        return ["–"] * 3
    values = (statistics.median(ready), _percentile(ready, 0.95), ready[-1])
    return [f"{value:.1f}" for value in values]


def render(
    batches: Sequence[Batch],
    idle_seconds: float,
    idle_writes: float,
    rss: float,
    argv: Sequence[str],
    minutes: float,
) -> str:
    rows = [
        [
            str(b.applied),
            str(len(b.ready)),
            *_latency_columns(b.ready),
            f"{b.reconciles:.0f}",
            f"{b.writes / b.reconciles:.2f}" if b.reconciles else "–",
        ]
        for b in batches
    ]
    lines = [
        "## Reconciliation: apply to Ready, writes, memory (bench/reconcile)",
        "",
        *markdown.run_lines("bench.reconcile", argv),
        f"- Run time: {minutes:.1f} min",
        "- Rig: the local control plane (kwok nodes: a pod is Ready once scheduled) and the "
        "operator, started with `--namespace` only, on the same machine. The WebServices are "
        "applied in one `kubectl apply --server-side`; Ready is polled by listing them every "
        f"{POLL:.0f} s, which is also the resolution of the latencies.",
        "",
        *markdown.table(
            [
                "WebServices applied at once",
                "Ready",
                "p50 apply → Ready (s)",
                "p95 (s)",
                "max (s)",
                "reconciles",
                "API writes per reconcile",
            ],
            rows,
            "rrrrrrr",
        ),
        "",
        f"- API writes while idle for {idle_seconds:.0f} s afterwards: {idle_writes:.0f} "
        "(target: 0).",
        f"- Operator resident memory (VmRSS) after the runs: {rss:.0f} MiB.",
        f"- Target: {batches[-1].applied} applied at once all Ready within {TARGET_SECONDS} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args, arguments, _ = rig.parse_args(__doc__, "20 WebServices and 10 s idle", argv)
    count, idle_seconds = (20, 10.0) if args.quick else (200, 30.0)

    began = time.monotonic()
    with (
        rig.cluster() as admin,
        rig.operator(
            admin, "bench-reconcile", 18280, 18290, "operator-bench-reconcile.log"
        ) as bench,
    ):
        batches = [
            run_batch(bench, "one", 1, timeout=60),
            run_batch(bench, "many", count, timeout=180),
        ]
        before = bench.operator.writes()
        time.sleep(idle_seconds)
        idle_writes = bench.operator.writes() - before
        rss = _rss_mib(bench.operator.process.pid)

    minutes = (time.monotonic() - began) / 60
    report = render(batches, idle_seconds, idle_writes, rss, arguments, minutes)
    print(report)
    if args.write:
        markdown.replace_section(args.write, "reconcile", report)
    missed = any(len(b.ready) < b.applied for b in batches)
    late = batches[-1].ready and batches[-1].ready[-1] > TARGET_SECONDS
    return 1 if missed or late or idle_writes > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
