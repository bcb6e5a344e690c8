"""The built-in autoscaler's loop body: observe, call the pure `decide`, then scale through the
WebService's scale subresource and report in status.

Replicas go through the scale subresource (not the Deployment): `spec.replicas` stays the one
number every writer agrees on (kubectl scale, the autoscaler, a GitOps tool told to ignore it),
and the reconciler keeps rendering the Deployment from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from herd.autoscaling.decide import (
    PANIC_WINDOW,
    STABLE_WINDOW,
    Decision,
    Observations,
    Recommendation,
    decide,
    with_canary_share,
)
from herd.desired import config_of
from herd.kube import KubeApi
from herd.metric_sources import APP, SOURCES, Track, target
from herd.model import WebService
from herd.objectmeta import AUTOSCALER_MANAGER
from herd.observation import MetricsReader
from herd.rollout import machine
from herd.status import Condition, merge_conditions
from herd.timestamps import rfc3339, seconds

FIELD_MANAGER = AUTOSCALER_MANAGER


@dataclass
class ScaleOutcome:
    decision: Decision
    scaled_from: int | None = None
    events: list[machine.Event] = field(default_factory=list)


def observe(prometheus: MetricsReader, ws: WebService, track: Track = "stable") -> Observations:
    source = SOURCES[ws.metrics.source]
    selected = target(ws, track)
    url = ws.metrics.prometheus_url
    seen = Observations(
        prometheus.query(url, source.requests_per_minute(selected)),
        prometheus.query(url, source.error_rate(selected)),
        prometheus.query(url, source.saturation_error_rate(selected)),
    )
    if ws.autoscaling.target_utilization is None:
        return seen
    # The parser admits targetUtilization with the app source only.
    return replace(
        seen,
        concurrency=prometheus.query(url, APP.concurrency(target(ws, track, STABLE_WINDOW))),
        panic_concurrency=prometheus.query(url, APP.in_flight(target(ws, track, PANIC_WINDOW))),
    )


def last_panic_of(previous: dict[str, Any]) -> float | None:
    at = (previous.get("autoscaling") or {}).get("lastPanicTime")
    return seconds(at) if at else None


def history_of(previous: dict[str, Any]) -> tuple[Recommendation, ...]:
    kept = (previous.get("autoscaling") or {}).get("recommendations") or []
    return tuple(Recommendation(float(r["time"]), int(r["replicas"])) for r in kept)


def status_of(
    ws: WebService, decision: Decision, previous: dict[str, Any], now: float, scaled: bool
) -> dict[str, Any]:
    before = previous.get("autoscaling") or {}
    autoscaling: dict[str, Any] = {
        "desiredReplicas": decision.replicas,
        "reason": decision.reason,
        "message": decision.message,
        "recommendations": [
            {"time": int(r.at), "replicas": r.replicas} for r in decision.recommendations
        ],
    }
    if decision.rpm is not None:
        autoscaling["currentRPM"] = round(decision.rpm, 1)
    if decision.error_rate is not None:
        autoscaling["errorRate"] = round(decision.error_rate, 4)
    if decision.utilization is not None:
        autoscaling["utilization"] = round(decision.utilization, 3)
    if decision.last_panic is not None:
        autoscaling["lastPanicTime"] = rfc3339(decision.last_panic)
    last = rfc3339(now) if scaled else before.get("lastScaleTime")
    if last:
        autoscaling["lastScaleTime"] = last
    condition = Condition("ScalingActive", decision.active, decision.reason, decision.message)
    return {
        "autoscaling": autoscaling,
        "conditions": merge_conditions(
            previous.get("conditions", []), (condition,), ws.generation, rfc3339(now)
        ),
    }


def autoscale(
    kube: KubeApi, prometheus: MetricsReader, ws: WebService, previous: dict[str, Any], now: float
) -> ScaleOutcome:
    canary_weight = machine.from_status(previous.get("canary")).weight
    seen = with_canary_share(observe(prometheus, ws), canary_weight)
    # The spec's capacity: during a rollout the stable track may still run the previous
    # version's server settings, which the autoscaler does not see.
    capacity = config_of(ws).concurrency_capacity
    decision = decide(
        ws.autoscaling,
        ws.replicas,
        seen,
        history_of(previous),
        now,
        capacity,
        last_panic_of(previous),
    )
    outcome = ScaleOutcome(decision)
    if decision.replicas != ws.replicas:
        kube.scale(ws.namespace, ws.name, decision.replicas, FIELD_MANAGER)
        outcome.scaled_from = ws.replicas
        outcome.events.append(
            (
                "Normal",
                "Scaled",
                f"scaled from {ws.replicas} to {decision.replicas} replicas: {decision.message}",
            )
        )
    was_active = next(
        (c for c in previous.get("conditions", []) if c.get("type") == "ScalingActive"), {}
    ).get("status")
    if not decision.active and was_active != "False":
        outcome.events.append(("Warning", decision.reason, decision.message))
    new = status_of(ws, decision, previous, now, outcome.scaled_from is not None)
    kube.apply_status(ws.namespace, ws.name, new, FIELD_MANAGER)
    return outcome
