"""The operator's own metrics (served on --metrics-port): reconciles, API requests, autoscaling
decisions. Not to be confused with the apps' request metrics, which `herd.metric_sources` reads
from Prometheus."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter("herd_reconciles", "WebService reconciliations", ["trigger", "result"])
RECONCILE_SECONDS = Histogram(
    "herd_reconcile_duration_seconds",
    "Time one reconciliation took",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter("herd_reconcile_writes", "API writes made by reconciliations")
AUTOSCALE_DECISIONS = Counter("herd_autoscale_decisions", "Autoscaler decisions", ["reason"])
AUTOSCALE_SECONDS = Histogram(
    "herd_autoscale_duration_seconds",
    "Time one autoscaling decision took (queries included)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_REQUESTS = Counter(
    "herd_kube_api_requests", "Requests Herd sent to the Kubernetes API", ["verb", "kind"]
)
