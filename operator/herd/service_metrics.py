"""What the operator exports about each WebService after a reconcile: its replicas, the canary's
weight, the limits its alerts compare against, and the analyses and rollback that pass
recorded. Pure; `herd.operator_metrics` turns a `Report` into series.

Most of this is in the WebService's status already, but Prometheus cannot read a status, and
the chart's dashboard and alerts should need nothing besides the operator's own scrape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herd.model import WebService
from herd.rollout.analysis import Result

VERDICTS: tuple[Result, ...] = ("pass", "fail", "inconclusive")
#: Which spec field a `max_error_rates` entry comes from.
LIMITS = ("autoscaling", "analysis")


@dataclass(frozen=True)
class Report:
    namespace: str
    name: str
    desired_replicas: int  # what Herd asks of the stable Deployment (spec.replicas)
    ready_replicas: int  # ready pods of the stable Deployment
    canary_weight: int  # the canary's share of traffic, percent; 0 without a rollout
    has_canary: bool
    max_replicas: int | None = None  # the built-in autoscaler's ceiling; None without it
    max_error_rates: tuple[tuple[str, float], ...] = ()  # (one of LIMITS, fraction)
    analyses: tuple[Result, ...] = ()  # the verdicts this pass recorded
    rolled_back: bool = False  # this pass ended the rollout as RolledBack


def report(
    ws: WebService,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    status: dict[str, Any],
) -> Report:
    """The report of one pass over `ws`: `before` and `after` are the rollout's state as kept
    before and after it (`status.canary`'s shape, None without a rollout), `status` the
    WebService's status it computed."""
    scaling = ws.autoscaling
    builtin = scaling.enabled and scaling.engine == "builtin"
    limits: list[tuple[str, float]] = []
    if scaling.enabled:
        limits.append(("autoscaling", scaling.max_error_rate))
    if ws.canary is not None:
        limits.append(("analysis", ws.canary.analysis.max_error_rate))
    return Report(
        namespace=ws.namespace,
        name=ws.name,
        desired_replicas=ws.replicas,
        ready_replicas=int(status.get("readyReplicas", 0)),
        canary_weight=int((after or {}).get("weight", 0)),
        has_canary=ws.canary is not None,
        max_replicas=scaling.max_replicas if builtin else None,
        max_error_rates=tuple(limits),
        analyses=new_analyses(before, after),
        rolled_back=rolled_back(before, after),
    )


def new_analyses(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[Result, ...]:
    """The verdict of an analysis recorded between `before` and `after`, if any. The machine
    records at most one per pass, with its time: a last analysis with a new time is new."""
    last = (after or {}).get("lastAnalysis") or {}
    verdict = last.get("verdict")
    if verdict not in VERDICTS:
        return ()
    previous = (before or {}).get("lastAnalysis") or {}
    return () if previous.get("time") == last.get("time") else (verdict,)


def rolled_back(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """The rollout became RolledBack in this pass (a failed analysis or its deadline); one that
    already was is not counted again on every later pass."""
    return (after or {}).get("phase") == "RolledBack" and (before or {}).get(
        "phase"
    ) != "RolledBack"
