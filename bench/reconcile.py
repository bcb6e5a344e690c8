"""bench/reconcile: how fast and how cheaply the operator brings WebServices to Ready.

On the local control plane, with an operator process of its own watching one namespace:
- apply-to-Ready latency (p50, p95, max) for 1 WebService applied at a time (10 in a row), for
  200 applied in one `kubectl apply`, and for 1000 created at once by 8 parallel API clients
  (as a GitOps tool does); Ready is seen by a watch, not a poll;
- reconciles and API writes per WebService in each row;
- API writes during 30 s of idling (target: zero), and the operator's resident memory at the end.

    .venv/bin/python -m bench.reconcile [--quick] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import kubernetes

from bench import markdown, rig
from bench.harness import cluster as local
from herd import api

MANIFEST = """---
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: {name}}}
spec:
  image: bench/app:1
  app: app.main:app
  replicas: 1
"""
CLIENTS = 8  # parallel API clients creating the largest batch
# The targets (#15).
P95_ONE_SECONDS = 0.5
LARGEST_SECONDS = 90
RSS_MIB = 150
RECONCILES_PER_OBJECT = 2
WRITES_PER_OBJECT = 5


def _client() -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(str(local.KUBECONFIG))


class ReadyWatch:
    """When each WebService of a namespace first reported Ready=True, from a watch on them."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._ready: dict[str, float] = {}
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        objects = kubernetes.client.CustomObjectsApi(_client())
        while not self._stopped.is_set():
            stream = kubernetes.watch.Watch().stream(
                objects.list_namespaced_custom_object,
                api.GROUP,
                api.VERSION,
                self._namespace,
                api.PLURAL,
                timeout_seconds=5,  # also how soon the thread notices stop()
            )
            for event in stream:
                seen = time.monotonic()
                obj = event["object"]
                conditions = (obj.get("status") or {}).get("conditions") or []
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                    with self._changed:
                        self._ready.setdefault(obj["metadata"]["name"], seen)
                        self._changed.notify_all()

    def wait(self, names: set[str], timeout: float) -> dict[str, float]:
        """The monotonic times the `names` became Ready, once all are or `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not names <= self._ready.keys() and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return {name: self._ready[name] for name in names if name in self._ready}

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


@dataclass(frozen=True)
class Row:
    label: str
    applied: int
    ready: list[float]  # seconds from apply to Ready, sorted, of those that became Ready
    reconciles: float
    writes: float  # the reconciler's: children applied or removed, status written

    @property
    def seconds_to_all(self) -> float | None:
        return self.ready[-1] if len(self.ready) == self.applied else None


def _counted(bench: rig.Bench, label: str, count: int, work: Callable[[], list[float]]) -> Row:
    def counts() -> tuple[float, float]:
        return bench.operator.reconciles(), bench.operator.counter("herd_reconcile_writes_total")

    before = counts()
    ready = sorted(work())
    time.sleep(3)  # let the last status writes land before counting
    after = counts()
    return Row(label, count, ready, *(a - b for a, b in zip(after, before, strict=True)))


def one_at_a_time(bench: rig.Bench, watch: ReadyWatch, count: int) -> Row:
    def work() -> list[float]:
        latencies = []
        for i in range(count):
            name = f"one-{i:03d}"
            applied = time.monotonic()
            bench.kubectl.run("apply", "--server-side", "-f", "-", stdin=MANIFEST.format(name=name))
            latencies += [t - applied for t in watch.wait({name}, timeout=60).values()]
        return latencies

    return _counted(bench, f"1, applied {count} times in a row", count, work)


def one_apply(bench: rig.Bench, watch: ReadyWatch, count: int) -> Row:
    names = {f"many-{i:04d}" for i in range(count)}

    def work() -> list[float]:
        applied = time.monotonic()
        manifests = "".join(MANIFEST.format(name=name) for name in sorted(names))
        bench.kubectl.run("apply", "--server-side", "-f", "-", stdin=manifests)
        return [t - applied for t in watch.wait(names, timeout=300).values()]

    return _counted(bench, f"{count}, in one `kubectl apply`", count, work)


def parallel_creates(bench: rig.Bench, watch: ReadyWatch, count: int) -> Row:
    names = sorted(f"gitops-{i:04d}" for i in range(count))
    shares = [names[k::CLIENTS] for k in range(CLIENTS)]

    def create(share: list[str]) -> None:
        objects = kubernetes.client.CustomObjectsApi(_client())
        for name in share:
            body = {
                "apiVersion": f"{api.GROUP}/{api.VERSION}",
                "kind": api.KIND,
                "metadata": {"name": name},
                "spec": {"image": "bench/app:1", "app": "app.main:app", "replicas": 1},
            }
            objects.create_namespaced_custom_object(
                api.GROUP, api.VERSION, bench.namespace, api.PLURAL, body
            )

    def work() -> list[float]:
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(create, shares))
        return [t - started for t in watch.wait(set(names), timeout=600).values()]

    return _counted(bench, f"{count}, created by {CLIENTS} parallel clients", count, work)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _latency_columns(ready: list[float]) -> list[str]:
    """p50, p95 and max of sorted latencies, or dashes when none became Ready."""
    if not ready:
        return ["–"] * 3
    values = (statistics.median(ready), _percentile(ready, 0.95), ready[-1])
    return [f"{value:.2f}" for value in values]


def render(
    rows: Sequence[Row],
    idle_seconds: float,
    idle_writes: float,
    rss: float,
    cpu: float,
    argv: Sequence[str],
    minutes: float,
) -> str:
    table = [
        [
            row.label,
            str(len(row.ready)),
            *_latency_columns(row.ready),
            f"{row.reconciles / row.applied:.2f}",
            f"{row.writes / row.applied:.2f}",
        ]
        for row in rows
    ]
    lines = [
        "## Reconciliation: apply to Ready, reconciles and writes, memory (bench/reconcile)",
        "",
        *markdown.run_lines("bench.reconcile", argv),
        f"- Run time: {minutes:.1f} min",
        "- Rig: the local control plane (kwok nodes: a pod is Ready once scheduled) and the "
        "operator, started with `--namespace` only, on the same machine. Ready is seen by a "
        "watch on the WebServices; latencies run from the apply (or the first create) to the "
        "watch event that showed Ready=True. API writes are the reconciler's applies, removals "
        "and status writes (`herd_reconcile_writes_total`); not counted: the Events kopf "
        "posts and its bookkeeping annotation on each WebService.",
        "",
        *markdown.table(
            [
                "WebServices",
                "Ready",
                "p50 apply → Ready (s)",
                "p95 (s)",
                "max (s)",
                "reconciles per WebService",
                "API writes per WebService",
            ],
            table,
            "lrrrrrr",
        ),
        "",
        f"- API writes while idle for {idle_seconds:.0f} s afterwards: {idle_writes:.0f} "
        "(target: 0).",
        f"- Operator resident memory (VmRSS) after the runs: {rss:.0f} MiB (target: ≤ {RSS_MIB}); "
        f"CPU time used in all: {cpu:.0f} s ({minutes * 60:.0f} s of wall time, 2 CPUs shared "
        "with the control plane).",
        f"- Targets: p95 ≤ {P95_ONE_SECONDS} s for one; the largest batch all Ready within "
        f"{LARGEST_SECONDS} s; ≤ {RECONCILES_PER_OBJECT} reconciles and ≤ {WRITES_PER_OBJECT} "
        "writes per WebService.",
    ]
    return "\n".join(lines) + "\n"


def missed_targets(rows: Sequence[Row], idle_writes: float, rss: float) -> list[str]:
    one, *_, largest = rows
    missed = [
        f"{row.label}: {row.applied - len(row.ready)} not Ready"
        for row in rows
        if len(row.ready) < row.applied
    ]
    if one.ready and _percentile(one.ready, 0.95) > P95_ONE_SECONDS:
        missed.append(f"p95 for one {_percentile(one.ready, 0.95):.2f} s")
    if largest.seconds_to_all is not None and largest.seconds_to_all > LARGEST_SECONDS:
        missed.append(f"{largest.label}: all Ready after {largest.seconds_to_all:.0f} s")
    for row in rows:
        if row.reconciles / row.applied > RECONCILES_PER_OBJECT:
            missed.append(f"{row.label}: {row.reconciles / row.applied:.2f} reconciles each")
        if row.writes / row.applied > WRITES_PER_OBJECT:
            missed.append(f"{row.label}: {row.writes / row.applied:.2f} writes each")
    if idle_writes > 0:
        missed.append(f"{idle_writes:.0f} writes while idle")
    if rss > RSS_MIB:
        missed.append(f"RSS {rss:.0f} MiB")
    return missed


def main(argv: list[str] | None = None) -> int:
    args, arguments, _ = rig.parse_args(
        __doc__, "3 one at a time, 20 in one apply, 100 in parallel, 10 s idle", argv
    )
    singles, batch, largest, idle_seconds = (
        (3, 20, 100, 10.0) if args.quick else (10, 200, 1000, 30.0)
    )

    began = time.monotonic()
    with (
        rig.cluster() as admin,
        rig.operator(
            admin, "bench-reconcile", 18280, 18290, "operator-bench-reconcile.log"
        ) as bench,
    ):
        watch = ReadyWatch(bench.namespace)
        try:
            rows = []
            for run, count in (
                (one_at_a_time, singles),
                (one_apply, batch),
                (parallel_creates, largest),
            ):
                row = run(bench, watch, count)
                rows.append(row)
                last = f"{row.ready[-1]:.1f} s" if row.ready else "–"
                print(f"{row.label}: {len(row.ready)} Ready, the last after {last}", flush=True)
            before = bench.operator.writes()
            time.sleep(idle_seconds)
            idle_writes = bench.operator.writes() - before
            rss = _rss_mib(bench.operator.process.pid)
            cpu = _cpu_seconds(bench.operator.process.pid)
        finally:
            watch.stop()
        # Reported before the cleanup, which a cluster this loaded may make slow.
        minutes = (time.monotonic() - began) / 60
        report = render(rows, idle_seconds, idle_writes, rss, cpu, arguments, minutes)
        print(report, flush=True)
        missed = missed_targets(rows, idle_writes, rss)
        print("Missed targets: " + ("; ".join(missed) if missed else "none"), flush=True)
        if args.write:
            markdown.replace_section(args.write, "reconcile", report)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
