"""Reconciliation: read, call the pure core (model, render, status), apply what differs.

Handlers call these with a `Kube`; nothing here decides what objects look like.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from herd import api, model, status
from herd import desired as render
from herd.drift import contains
from herd.kube import ApiError, Kube, Ref
from herd.objectmeta import MANAGED_BY, MANAGED_BY_LABEL
from herd.rollout import machine as rollout
from herd.settings import Settings

log = logging.getLogger("herd.reconcile")


class TransientError(Exception):
    """The API could not be reached or was overloaded: retry later."""


@dataclass
class Outcome:
    """What a reconcile did, for events and metrics."""

    subject: dict[str, Any] | None = None  # the WebService the events are about
    writes: int = 0
    status_changed: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NamespaceGone(Exception):
    """The WebService's namespace is being deleted: stop quietly, everything goes with it."""


def _problem(error: ApiError, obj: dict[str, Any]) -> status.Problem:
    if error.transient:
        raise TransientError(str(error)) from error
    if error.namespace_terminating:
        raise NamespaceGone() from error
    return status.Problem(
        "ApplyFailed",
        f"the API server rejected {obj['kind']} {obj['metadata']['name']}: {error.message}",
    )


def _sync_child(
    kube: Kube, want: dict[str, Any], live: dict[str, Any] | None, outcome: Outcome
) -> dict[str, Any] | None:
    if live is not None and contains(live, want):
        return live
    applied = kube.apply(want)
    outcome.writes += 1
    if live is not None:
        outcome.events.append(
            (
                "Normal",
                "Updated",
                f"{want['kind']} {want['metadata']['name']} updated to the desired state",
            )
        )
    else:
        outcome.events.append(
            ("Normal", "Created", f"created {want['kind']} {want['metadata']['name']}")
        )
    return applied


def _remove(kube: Kube, ref: render.ObjectRef, owner_uid: str, outcome: Outcome) -> None:
    target = Ref(ref.kind, ref.namespace, ref.name)
    live = kube.get(target)
    if live is None:
        return
    owners = live["metadata"].get("ownerReferences", [])
    # Only delete what this WebService owns: a same-named object of someone else stays.
    if live["metadata"].get("labels", {}).get(MANAGED_BY_LABEL) != MANAGED_BY or not any(
        o.get("uid") == owner_uid for o in owners
    ):
        return
    if kube.delete(target):
        outcome.writes += 1
        outcome.events.append(("Normal", "Deleted", f"deleted {ref.kind} {ref.name}"))


def _write_status(kube: Kube, body: dict[str, Any], new: dict[str, Any], outcome: Outcome) -> None:
    if status.unchanged(new, body.get("status") or {}):
        return
    meta = body["metadata"]
    try:
        kube.apply_status(meta["namespace"], meta["name"], new)
    except ApiError as error:
        if error.status == 404:
            return  # deleted meanwhile: nothing left to report on
        raise
    outcome.writes += 1
    outcome.status_changed = True


def tracks_of(
    ws: model.WebService, body: dict[str, Any], settings: Settings
) -> tuple[render.Tracks, rollout.State]:
    """What the stable and canary tracks run, from the rollout state in status."""
    previous = body.get("status") or {}
    canary = rollout.from_status(previous.get("canary"))
    snapshot = previous.get("stableSpec")
    if ws.canary is None or not snapshot:
        return render.Tracks(stable=ws), canary
    stable = (
        ws
        if canary.phase == "Promoting"
        else model.parse(model.with_pod_fields(body, snapshot), settings)
    )
    return render.Tracks(stable, ws if canary.active else None, canary.weight), canary


def _stable_spec(
    body: dict[str, Any],
    ws: model.WebService,
    stable_is_spec: bool,
    deployment: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The pod fields of the version that serves: the spec's, once its rollout completed."""
    _, progressing = status.rollout_conditions(ws.replicas, deployment)
    if stable_is_spec and progressing.reason == "RolloutComplete":
        return model.pod_fields(body["spec"])
    return (body.get("status") or {}).get("stableSpec")


def reconcile(kube: Kube, settings: Settings, namespace: str, name: str) -> Outcome:
    """Bring one WebService's children and status to the desired state.

    Level-triggered: whatever triggered it, it reads the WebService and every child afresh, so
    a late trigger never writes an older view of the world.
    """
    body = kube.get(Ref(api.KIND, namespace, name))
    if body is None or body["metadata"].get("deletionTimestamp"):
        return Outcome()
    outcome = Outcome(subject=body)
    previous = body.get("status") or {}
    generation = body["metadata"].get("generation", 0)
    try:
        ws = model.parse(body, settings)
    except model.InvalidSpec as error:
        problem = status.Problem("InvalidSpec", str(error))
        new_status = status.invalid(generation, problem, previous, now())
        outcome.events.extend(_transition_events(previous, new_status))
        _write_status(kube, body, new_status, outcome)
        return outcome

    tracks, canary = tracks_of(ws, body, settings)
    desired = render.desired(ws, tracks)
    problems: list[status.Problem] = []
    deployment: dict[str, Any] | None = None
    try:
        for want in desired.objects:
            live = kube.get(Ref.of(want))
            try:
                synced = _sync_child(kube, want, live, outcome)
            except ApiError as error:
                problems.append(_problem(error, want))
                synced = live
            if want["kind"] == "Deployment" and want["metadata"]["name"] == ws.name:
                deployment = synced
        for absent in desired.absent:
            _remove(kube, absent, ws.uid, outcome)
        spec_revision = render.revision_of(ws)
        new_status = status.compute(
            ws, desired, deployment, problems, previous, now(), canary, spec_revision
        )
        stable_spec = _stable_spec(body, ws, tracks.stable is ws, deployment)
        if stable_spec is not None:
            new_status["stableSpec"] = stable_spec
        outcome.events.extend(_transition_events(previous, new_status))
        _write_status(kube, body, new_status, outcome)
    except NamespaceGone:
        return Outcome()
    except ApiError as error:
        if error.transient:
            raise TransientError(str(error)) from error
        raise
    return outcome


def _condition(status_: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status_.get("conditions", []) if c["type"] == kind), {})


def _transition_events(previous: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Events for what a user should see: becoming Ready, and each new Degraded reason."""
    events = []
    old_ready, ready = _condition(previous, "Ready"), _condition(new, "Ready")
    if ready.get("status") == "True" and old_ready.get("status") != "True":
        events.append(("Normal", "Ready", ready["message"]))
    old_degraded, degraded = _condition(previous, "Degraded"), _condition(new, "Degraded")
    if degraded.get("status") == "True" and (degraded.get("reason"), degraded.get("message")) != (
        old_degraded.get("reason"),
        old_degraded.get("message"),
    ):
        events.append(("Warning", degraded["reason"], degraded["message"]))
    return events
