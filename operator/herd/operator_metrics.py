"""The operator's own metrics (served on --metrics-port): reconciles, API requests, autoscaling
decisions, and per WebService what a reconcile reported (`herd.service_metrics`). Not to be
confused with the apps' request metrics, which `herd.metric_sources` reads from Prometheus."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from herd.service_metrics import LIMITS, VERDICTS, Report

RECONCILES = Counter("herd_reconciles", "WebService reconciliations", ["trigger", "result"])
RECONCILE_SECONDS = Histogram(
    "herd_reconcile_duration_seconds",
    "Time one reconciliation took",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITES = Counter("herd_reconcile_writes", "API writes made by reconciliations")
IGNORED_EVENTS = Counter(
    "herd_child_events_ignored",
    "Child watch events not reconciled: they showed what the last reconcile saw",
)
AUTOSCALE_DECISIONS = Counter("herd_autoscale_decisions", "Autoscaler decisions", ["reason"])
AUTOSCALE_SECONDS = Histogram(
    "herd_autoscale_duration_seconds",
    "Time one autoscaling decision took (queries included)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_REQUESTS = Counter(
    "herd_kube_api_requests", "Requests Herd sent to the Kubernetes API", ["verb", "kind"]
)

_WEBSERVICE = ["namespace", "webservice"]
REPLICAS = Gauge(
    "herd_webservice_replicas",
    "Replicas of a WebService's stable Deployment: desired (spec.replicas) and ready",
    [*_WEBSERVICE, "kind"],
)
CANARY_WEIGHT = Gauge(
    "herd_webservice_canary_weight", "Percent of traffic on the canary", _WEBSERVICE
)
MAX_REPLICAS = Gauge(
    "herd_webservice_max_replicas", "The built-in autoscaler's maxReplicas", _WEBSERVICE
)
MAX_ERROR_RATE = Gauge(
    "herd_webservice_max_error_rate",
    "A configured maxErrorRate (limit: autoscaling or analysis), as a fraction",
    [*_WEBSERVICE, "limit"],
)
ANALYSES = Counter("herd_canary_analyses", "Canary analyses by verdict", [*_WEBSERVICE, "verdict"])
ROLLBACKS = Counter("herd_canary_rollbacks", "Canary rollouts rolled back", _WEBSERVICE)
PER_WEBSERVICE = (REPLICAS, CANARY_WEIGHT, MAX_REPLICAS, MAX_ERROR_RATE, ANALYSES, ROLLBACKS)


def record(report: Report) -> None:
    """Set one WebService's series from what a reconcile reported."""
    who = (report.namespace, report.name)
    REPLICAS.labels(*who, "desired").set(report.desired_replicas)
    REPLICAS.labels(*who, "ready").set(report.ready_replicas)
    CANARY_WEIGHT.labels(*who).set(report.canary_weight)
    # A limit taken out of the spec goes, or an alert would compare against a stale one.
    if report.max_replicas is None:
        MAX_REPLICAS.remove(*who)
    else:
        MAX_REPLICAS.labels(*who).set(report.max_replicas)
    rates = dict(report.max_error_rates)
    for limit in LIMITS:
        if limit in rates:
            MAX_ERROR_RATE.labels(*who, limit).set(rates[limit])
        else:
            MAX_ERROR_RATE.remove(*who, limit)
    if report.has_canary:
        # Exported at 0 before the first one: increase() misses the first increment of a
        # series that appears with it, so the first rollback would never alert.
        for verdict in VERDICTS:
            ANALYSES.labels(*who, verdict)
        ROLLBACKS.labels(*who)
    for verdict in report.analyses:
        ANALYSES.labels(*who, verdict).inc()
    if report.rolled_back:
        ROLLBACKS.labels(*who).inc()


def forget(namespace: str, name: str) -> None:
    """Drop every series of a WebService that is gone: names must not pile up for ever."""
    for metric in PER_WEBSERVICE:
        metric.remove_by_labels({"namespace": namespace, "webservice": name})
