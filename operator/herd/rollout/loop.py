"""The rollout's turn in every reconcile: observe the tracks and, when an analysis is due, the
canary's metrics; step the pure machine (`herd.rollout.machine.step`). The reconciler keeps
the new state on the stable Deployment (herd.held), reports it in `status.canary` (under its
own field manager), and renders the objects it asks for, in the same pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from herd import desired, kinds
from herd.kinds import Ref
from herd.metric_sources import SOURCES, MetricSource, Target, render_query, target
from herd.model import WebService
from herd.objectmeta import CANARY_MANAGER, REVISION_LABEL, canary_name
from herd.observation import MetricsReader
from herd.rollout import analysis, machine

FIELD_MANAGER = CANARY_MANAGER


@dataclass(frozen=True)
class Turn:
    state: machine.State  # what the objects are rendered for
    events: list[machine.Event] = field(default_factory=list)
    record: dict[str, Any] | None = None  # the state to keep and report; None: no rollout yet


def deployment_runs(
    deployment: dict[str, Any] | None, revision: str, replicas: int | None = None
) -> bool:
    """The Deployment runs `revision` on all its replicas, fully rolled out and ready."""
    if deployment is None:
        return False
    template = deployment["spec"]["template"]["metadata"].get("labels", {})
    status = deployment.get("status", {})
    want = deployment["spec"].get("replicas", 1) if replicas is None else replicas
    return (
        template.get(REVISION_LABEL) == revision
        and status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) >= want
        and status.get("readyReplicas", 0) >= want
        and status.get("replicas", 0) == want
    )


def _intent(intent: dict[str, Any] | None, state: machine.State) -> machine.Intent | None:
    intent = intent or {}
    if not intent.get("id") or intent["id"] == state.handled_intent:
        return None
    return machine.Intent(intent["action"], intent["id"])


def _track_metrics(
    prometheus: MetricsReader, url: str, source: MetricSource, selected: Target
) -> analysis.TrackMetrics:
    return analysis.TrackMetrics(
        prometheus.query(url, source.request_count(selected)),
        prometheus.query(url, source.error_rate(selected)),
        prometheus.query(url, source.p99_latency_seconds(selected)),
    )


def analyze(prometheus: MetricsReader, ws: WebService) -> analysis.Verdict:
    """Both tracks over the same interval (the stable's only when it is compared with), and
    each metric check's query for the canary, and the stable where it compares with it; all
    against the one Prometheus the spec names and the admin allowed."""
    assert ws.canary is not None
    spec = ws.canary.analysis
    source = SOURCES[ws.metrics.source]
    window = f"{spec.interval_seconds}s"
    canary, stable = target(ws, "canary", window), target(ws, "stable", window)
    url = ws.metrics.prometheus_url
    readings = {
        check.name: analysis.MetricReading(
            prometheus.query(url, render_query(check.query, canary)),
            prometheus.query(url, render_query(check.query, stable))
            if check.threshold == "maxIncreaseOverStable"
            else None,
        )
        for check in spec.metrics
    }
    return analysis.judge(
        spec,
        _track_metrics(prometheus, url, source, canary),
        _track_metrics(prometheus, url, source, stable) if spec.compare_with_stable else None,
        readings,
    )


def _record(ws: WebService, state: machine.State) -> dict[str, Any] | None:
    if state.phase is None:
        return None  # no rollout has started: nothing to keep or report
    return {**machine.to_status(state), "observedGeneration": ws.generation}


def turn(
    prometheus: MetricsReader,
    ws: WebService,
    serving: WebService | None,
    revision: str,
    held: dict[str, Any] | None,
    intent: dict[str, Any] | None,
    live: dict[Ref, dict[str, Any] | None],
    now: float,
) -> Turn:
    """One step of the rollout of `ws` (whose pod template hashes to `revision`) against
    `serving`, the version that serves; `held` is the rollout state the operator kept
    (herd.held), `intent` the user's status.intent, `live` the objects as read."""
    state = machine.from_status(held)
    if ws.canary is None or serving is None:
        return Turn(state)  # no canary wanted, or nothing serves yet to compare against
    stable_revision = desired.revision_of(serving)
    wanted = _intent(intent, state)
    if (
        not state.active
        and wanted is None
        and (revision == stable_revision or state.canary_revision == revision)
    ):
        return Turn(state, record=_record(ws, state))

    def deployment(name: str) -> dict[str, Any] | None:
        return live.get(Ref(kinds.DEPLOYMENT.kind, ws.namespace, name))

    due = machine.analysis_due(ws.canary, state, now)
    world = machine.World(
        now=now,
        canary_revision=revision,
        stable_revision=stable_revision,
        canary_ready=deployment_runs(
            deployment(canary_name(ws)),
            revision,
            machine.canary_replicas(ws.replicas, state.weight),
        ),
        stable_promoted=deployment_runs(deployment(ws.name), revision),
        verdict=analyze(prometheus, ws) if due else None,
        intent=wanted,
    )
    new, events = machine.step(ws.canary, state, world)
    return Turn(new, events, _record(ws, new))
