"""The canary controller's loop body: observe the tracks and the canary's metrics, call the
pure `herd.rollout.step`, and record the new state in `status.canary` (its own field manager).
The reconciler then renders the objects that state asks for."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from herd import desired as render
from herd import model
from herd.kube import Kube, Ref
from herd.metric_sources import SOURCES, Target
from herd.objectmeta import REVISION_LABEL, canary_name
from herd.prometheus import Prometheus
from herd.rollout import machine as rollout
from herd.settings import Settings

FIELD_MANAGER = "herd-canary"


@dataclass
class CanaryOutcome:
    changed: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)


def _runs(deployment: dict[str, Any] | None, revision: str, replicas: int | None = None) -> bool:
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


def _intent(previous: dict[str, Any], state: rollout.State) -> rollout.Intent | None:
    intent = previous.get("intent") or {}
    if not intent.get("id") or intent["id"] == state.handled_intent:
        return None
    return rollout.Intent(intent["action"], intent["id"])


async def analyze(prometheus: Prometheus, ws: model.WebService) -> rollout.Verdict:
    assert ws.canary is not None
    source = SOURCES[ws.metrics.source]
    target = Target(ws.namespace, ws.name, "canary", f"{ws.canary.analysis.interval_seconds}s")
    requests, errors, p99 = await asyncio.gather(
        prometheus.query(source.request_count(target)),
        prometheus.query(source.error_rate(target)),
        prometheus.query(source.p99_latency_seconds(target)),
    )
    return rollout.judge(ws.canary.analysis, requests, errors, p99)


async def progress(
    kube: Kube, prometheus: Prometheus, settings: Settings, body: dict[str, Any], now: float
) -> CanaryOutcome:
    ws = model.parse(body, settings)
    previous = body.get("status") or {}
    snapshot = previous.get("stableSpec")
    if ws.canary is None or not snapshot:
        return CanaryOutcome()  # no canary wanted, or nothing serves yet to compare against
    stable = model.parse(model.with_pod_fields(body, snapshot), settings)
    canary_revision, stable_revision = render.revision_of(ws), render.revision_of(stable)
    state = rollout.from_status(previous.get("canary"))
    seen_generation = (previous.get("canary") or {}).get("observedGeneration")
    intent = _intent(previous, state)
    if (
        not state.active
        and intent is None
        and (canary_revision == stable_revision or state.canary_revision == canary_revision)
    ):
        # Nothing to roll out, or this revision was already decided. Still say which spec this
        # status describes: `herd status --wait` must not take an old phase for the new spec.
        if state.phase is not None and seen_generation != ws.generation:
            await _write(kube, ws, state)
        return CanaryOutcome()

    stable_deployment, canary_deployment = await asyncio.gather(
        asyncio.to_thread(kube.get, Ref("Deployment", ws.namespace, ws.name)),
        asyncio.to_thread(kube.get, Ref("Deployment", ws.namespace, canary_name(ws))),
    )
    verdict = await analyze(prometheus, ws) if rollout.analysis_due(ws.canary, state, now) else None
    world = rollout.World(
        now=now,
        canary_revision=canary_revision,
        stable_revision=stable_revision,
        canary_ready=_runs(
            canary_deployment, canary_revision, rollout.canary_replicas(ws.replicas, state.weight)
        ),
        stable_promoted=_runs(stable_deployment, canary_revision),
        verdict=verdict,
        intent=intent,
    )
    new, events = rollout.step(ws.canary, state, world)
    if new == state:
        if seen_generation != ws.generation:
            await _write(kube, ws, new)
        return CanaryOutcome()
    await _write(kube, ws, new)
    return CanaryOutcome(True, events)


async def _write(kube: Kube, ws: model.WebService, state: rollout.State) -> None:
    canary = {**rollout.to_status(state), "observedGeneration": ws.generation}
    await asyncio.to_thread(
        kube.apply_status, ws.namespace, ws.name, {"canary": canary}, FIELD_MANAGER
    )
