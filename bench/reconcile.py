"""bench/reconcile: how fast and how cheaply the operator brings WebServices to Ready.

Measures, on the local control plane with a real operator process:
- apply-to-Ready latency (p50, p95, max) for 1 WebService and for N applied at once;
- API writes per reconciliation, and writes during an idle period (target: zero);
- the operator's resident memory.

    .venv/bin/python -m bench.reconcile [--count 200] [--idle 30] [--write docs/bench-reconcile.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterable

from tests.support import cluster as local
from tests.support import operator as herd_operator

MANIFEST = """---
apiVersion: herd.dev/v1alpha1
kind: WebService
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  image: bench/app:1
  app: app.main:app
  replicas: 1
"""


def _ready_times(
    kubectl: local.Kubectl, names: set[str], started: float, timeout: float
) -> dict[str, float]:
    """Seconds from `started` until each WebService first reported Ready=True (polled)."""
    ready: dict[str, float] = {}
    deadline = started + timeout
    while len(ready) < len(names) and time.monotonic() < deadline:
        items = json.loads(kubectl.run("get", "webservices", "-o", "json").stdout)["items"]
        now = time.monotonic() - started
        for item in items:
            name = item["metadata"]["name"]
            conditions = item.get("status", {}).get("conditions", [])
            if name not in ready and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conditions
            ):
                ready[name] = now
        time.sleep(1)  # each poll lists every object: poll gently, not to load the API server
    return ready


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _counter(metrics: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_batch(
    admin: local.Kubectl, operator: herd_operator.Operator, count: int, timeout: float
) -> dict[str, float]:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    admin.run("create", "namespace", namespace, namespaced=False)
    kubectl = local.Kubectl(admin.binary, namespace)
    names = {f"svc-{i:03d}" for i in range(count)}
    before = operator.metrics()
    started = time.monotonic()
    kubectl.run(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin="".join(MANIFEST.format(name=n, namespace=namespace) for n in sorted(names)),
    )
    ready = _ready_times(kubectl, names, started, timeout)
    time.sleep(3)  # let the last status writes land before counting
    after = operator.metrics()
    reconciles = _counter(after, "herd_reconciles_total") - _counter(
        before, "herd_reconciles_total"
    )
    writes = _counter(after, "herd_reconcile_writes_total") - _counter(
        before, "herd_reconcile_writes_total"
    )
    latencies = list(ready.values()) or [float("nan")]
    result = {
        "count": count,
        "ready": len(ready),
        "p50": statistics.median(latencies),
        "p95": _percentile(latencies, 0.95),
        "max": max(latencies),
        "reconciles": reconciles,
        "writes_per_reconcile": writes / reconciles if reconciles else float("nan"),
        "namespace": namespace,
    }
    return result


def idle_writes(operator: herd_operator.Operator, seconds: float) -> float:
    before = operator.writes()
    time.sleep(seconds)
    return operator.writes() - before


def table(rows: Iterable[dict[str, float]], idle: float, idle_seconds: float, rss: float) -> str:
    lines = [
        "| WebServices applied at once | Ready | p50 apply→Ready (s) | p95 (s) | max (s) "
        "| reconciles | API writes per reconcile |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['count']} | {r['ready']} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} "
            f"| {r['reconciles']:.0f} | {r['writes_per_reconcile']:.2f} |"
        )
    lines += [
        "",
        f"API writes while idle for {idle_seconds:.0f} s: {idle:.0f}",
        f"Operator resident memory after the runs: {rss:.0f} MiB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--write", help="also write the table (with the command) to this file")
    args = parser.parse_args(argv)

    binary = local.tools_bin() / "kubectl"
    started_cluster = not local.cluster_running()
    if started_cluster:
        local.cluster_up()
    admin = local.Kubectl(binary)
    namespaces: list[str] = []
    operator = None
    try:
        herd_operator.install_crd(admin)
        operator = herd_operator.start(liveness_port=18280, metrics_port=18290)
        rows = []
        for count in (1, args.count):
            row = run_batch(admin, operator, count, args.timeout)
            namespaces.append(row["namespace"])
            rows.append(row)
        idle = idle_writes(operator, args.idle)
        rss = _rss_mib(operator.process.pid)
    finally:
        if operator is not None:
            herd_operator.stop(operator)
        for namespace in namespaces:
            admin.run(
                "delete", "namespace", namespace, "--wait=false", namespaced=False, check=False
            )
        if started_cluster:
            local.cluster_down()

    report = table(rows, idle, args.idle, rss)
    print(report)
    if args.write:
        command = "python -m bench.reconcile " + " ".join(argv or sys.argv[1:])
        with open(args.write, "w") as out:
            out.write(
                "# bench/reconcile\n\n"
                f"Command: `{command.strip()}` on {platform.machine()}, {os.cpu_count()} CPUs, "
                "local control plane (kwok nodes), operator and control plane on the same "
                "machine.\n\n" + report + "\n"
            )
    failed = any(r["ready"] < r["count"] for r in rows) or idle > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
