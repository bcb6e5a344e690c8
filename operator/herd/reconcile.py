"""Reconciliation: read, call the pure core (model, the rollout machine, desired, status), apply
what differs. One pass per trigger, whatever the trigger (a watch event, the canary timer):
the WebService and its children are read once, the rollout takes its turn, and the objects
that turn asks for are applied in the same pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from herd import desired, essence, held, kinds, model, pod_troubles, service_metrics, status
from herd.api_errors import ApiError
from herd.drift import contains, foreign, forged, owns_more, pointer
from herd.kinds import Ref
from herd.kube import FIELD_MANAGER, KubeApi
from herd.objectmeta import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OPERATOR_MANAGERS,
    REVISION_LABEL,
    USER_STATUS_FIELDS,
    pods_selector,
)
from herd.observation import MetricsReader
from herd.rollout import loop as rollout
from herd.rollout import machine
from herd.settings import Settings
from herd.timestamps import rfc3339

log = logging.getLogger("herd.reconcile")


class TransientError(Exception):
    """The API could not be reached or was overloaded: retry later."""


class NamespaceGone(Exception):
    """The WebService's namespace is being deleted: stop quietly, everything goes with it."""


@dataclass
class Outcome:
    """What a reconcile did, for events and metrics."""

    subject: dict[str, Any] | None = None  # the WebService the events are about
    writes: int = 0
    status_changed: bool = False
    events: list[machine.Event] = field(default_factory=list)
    # What the operator exports about the WebService; None when the pass could not render it
    # (its series keep their last values) or found it gone.
    report: service_metrics.Report | None = None
    # The essence of each child as the pass left it ("" for absent); None if it read none.
    seen: dict[Ref, str] | None = None


def _problem(error: ApiError, obj: dict[str, Any]) -> status.Problem:
    if error.transient:
        raise TransientError(str(error)) from error
    if error.namespace_terminating:
        raise NamespaceGone() from error
    what = f"{obj['kind']} {obj['metadata']['name']}"
    if error.status == 403:
        return _forbidden(Ref.of(obj), error)
    return status.Problem("ApplyFailed", f"the API server rejected {what}: {error.message}")


def _forbidden(ref: Ref, error: ApiError) -> status.Problem:
    return status.Problem(
        "Forbidden",
        f"the operator may not manage {ref.kind} {ref.name} (check its RBAC): {error.message}",
    )


def _read(kube: KubeApi, refs: list[Ref]) -> tuple[dict[Ref, Any], dict[Ref, ApiError]]:
    """Each object as it is, and the ones the operator may not read (RBAC taken away for one
    kind must not stop it serving the others)."""
    live: dict[Ref, Any] = {}
    forbidden: dict[Ref, ApiError] = {}
    for ref in refs:
        try:
            live[ref] = kube.get(ref)
        except ApiError as error:
            if error.status != 403:
                raise
            forbidden[ref] = error
    return live, forbidden


def _sync_child(
    kube: KubeApi, want: dict[str, Any], live: dict[str, Any] | None, outcome: Outcome
) -> dict[str, Any] | None:
    kind, name = want["kind"], want["metadata"]["name"]
    strays = foreign(live, want, FIELD_MANAGER) if live is not None else []
    if strays:
        kube.remove_fields(Ref.of(want), [pointer(path) for _, path in strays])
        outcome.writes += 1
        removed = ", ".join(f"{'.'.join(map(str, path))} (by {who})" for who, path in strays)
        outcome.events.append(
            ("Warning", "ForeignFieldsRemoved", f"{kind} {name}: removed {removed}")
        )
    if live is not None and contains(live, want) and not owns_more(live, want, FIELD_MANAGER):
        return live
    applied = kube.apply(want)
    outcome.writes += 1
    if live is not None and contains(live, held.without(want)):
        return applied  # only what the operator keeps on it changed: no news for users
    if live is not None:
        outcome.events.append(("Normal", "Updated", f"{kind} {name} updated to the desired state"))
    else:
        outcome.events.append(("Normal", "Created", f"created {kind} {name}"))
    return applied


def _owned_by(live: dict[str, Any], owner_uid: str) -> bool:
    """Herd made it for this WebService: a same-named object of someone else stays."""
    meta = live["metadata"]
    return meta.get("labels", {}).get(MANAGED_BY_LABEL) == MANAGED_BY and any(
        o.get("uid") == owner_uid for o in meta.get("ownerReferences", [])
    )


def _write_status(
    kube: KubeApi, body: dict[str, Any], new: dict[str, Any], outcome: Outcome
) -> None:
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


def _kept(
    ws: model.WebService,
    previous: dict[str, Any],
    service: dict[str, Any] | None,
    deployment: dict[str, Any] | None,
) -> held.Held:
    """What the operator keeps on the stable Service, or an older operator kept on the stable
    Deployment. A WebService served by an operator that kept it in status still has it only
    there: the stable version is taken from there once, if the Deployment really runs it; a
    rollout state only if it is over (a forged one in progress could promote without
    analysis)."""
    kept = held.read(service)
    if kept == held.Held():
        kept = held.read(deployment)
    stable_spec, rollout_state = kept.stable_spec, kept.rollout
    if deployment is not None and stable_spec is None and previous.get("stableSpec"):
        claimed = desired.revision_of(model.with_pod_fields(ws, previous["stableSpec"]))
        running = deployment["spec"]["template"]["metadata"].get("labels", {})
        if running.get(REVISION_LABEL) == claimed:
            stable_spec = previous["stableSpec"]
    reported = previous.get("canary") or {}
    if rollout_state is None and reported.get("phase") in machine.TERMINAL:
        rollout_state = reported
    return held.Held(stable_spec, rollout_state)


def reconcile(
    kube: KubeApi,
    prometheus: MetricsReader,
    settings: Settings,
    namespace: str,
    name: str,
    now: float,
) -> Outcome:
    """Bring one WebService's rollout, children and status to the desired state.

    Level-triggered: whatever triggered it, it reads the WebService and every child afresh, so
    a late trigger never writes an older view of the world.
    """
    try:
        body = kube.get(Ref(kinds.WEBSERVICE.kind, namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            return Outcome()
        # Pauses, deadlines and analysis intervals on one clock, whichever replica is active.
        now = kube.server_time() or now
        outcome = Outcome(subject=body)
        body = _without_forged_status(kube, body, outcome)
        try:
            ws = model.parse(body, settings)
            pod_monitor_labels = _pod_monitor_labels(kube, settings, ws, body, outcome)
            _converge(kube, prometheus, body, ws, pod_monitor_labels, now, outcome)
        except model.InvalidSpec as error:
            _degrade(kube, body, status.Problem(error.reason, str(error)), now, outcome)
        except (ApiError, TransientError, NamespaceGone):
            raise
        except Exception as error:
            # A bug of Herd's must not leave the user without a word, nor stop the others.
            log.exception("reconciling %s/%s failed", namespace, name)
            message = (
                f"the operator failed on this WebService ({type(error).__name__}: {error}); "
                "its log has the details"
            )
            _degrade(kube, body, status.Problem("InternalError", message[:500]), now, outcome)
    except NamespaceGone:
        return Outcome()
    except ApiError as error:
        if error.transient:
            raise TransientError(str(error)) from error
        raise
    return outcome


def _without_forged_status(kube: KubeApi, body: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The WebService without what others wrote to its status besides `status.intent`:
    herd-promoter's patch right is for intents, and a forged report must not stay, nor be
    read back as the operator's."""
    found = forged(body, OPERATOR_MANAGERS, USER_STATUS_FIELDS)
    if not found:
        return body
    ref = Ref.of(body)
    try:
        body = kube.remove_fields(ref, [pointer(path) for _, path in found], "status")
    except ApiError as error:
        if error.status not in (404, 409, 422):
            raise
        return body  # deleted or changed meanwhile: its own watch event reconciles it again
    outcome.writes += 1
    removed = ", ".join(f"{'.'.join(map(str, path))} (by {who})" for who, path in found)
    outcome.events.append(
        ("Warning", "StatusRemoved", f"removed {removed}: only status.intent is for users")
    )
    return body


def _degrade(
    kube: KubeApi, body: dict[str, Any], problem: status.Problem, now: float, outcome: Outcome
) -> None:
    """Status of a WebService that cannot be served: Degraded with `problem`, the rest kept."""
    previous = body.get("status") or {}
    generation = body["metadata"].get("generation", 0)
    new_status = status.invalid(generation, problem, previous, rfc3339(now))
    outcome.events.extend(_transition_events(previous, new_status))
    _write_status(kube, body, new_status, outcome)


def _pod_monitor_labels(
    kube: KubeApi,
    settings: Settings,
    ws: model.WebService,
    body: dict[str, Any],
    outcome: Outcome,
) -> tuple[tuple[str, str], ...] | None:
    """The labels of the WebService's PodMonitor, or None for no PodMonitor: the setting is
    off, or the cluster serves no PodMonitor CRD. That is no fault of the WebService's (its
    pods still carry the scrape annotations), so a Warning, once per generation rather than on
    every pass, and not Degraded."""
    if not settings.pod_monitors:
        return None
    if kube.served(kinds.POD_MONITOR):
        return settings.pod_monitor_labels
    if ws.generation != (body.get("status") or {}).get("observedGeneration"):
        crd = kinds.POD_MONITOR.resource
        outcome.events.append(
            (
                "Warning",
                "PodMonitorUnavailable",
                f"no PodMonitor: the operator runs with --pod-monitors, but the cluster has no "
                f"CRD {crd} (the Prometheus Operator's); the pods' prometheus.io annotations "
                "still ask to be scraped",
            )
        )
    return None


def _converge(
    kube: KubeApi,
    prometheus: MetricsReader,
    body: dict[str, Any],
    ws: model.WebService,
    pod_monitor_labels: tuple[tuple[str, str], ...] | None,
    now: float,
    outcome: Outcome,
) -> None:
    previous = body.get("status") or {}
    revision = desired.revision_of(ws)
    live, forbidden = _read(kube, desired.owned(ws))
    outcome.seen = {ref: essence.digest(obj) if obj else "" for ref, obj in live.items()}
    stable_ref = Ref(kinds.DEPLOYMENT.kind, ws.namespace, ws.name)
    service_ref = Ref(kinds.SERVICE.kind, ws.namespace, ws.name)
    kept = _kept(ws, previous, live.get(service_ref), live.get(stable_ref))
    serving = model.with_pod_fields(ws, kept.stable_spec) if kept.stable_spec else None

    turn = rollout.turn(
        prometheus, ws, serving, revision, kept.rollout, previous.get("intent"), live, now
    )
    outcome.events.extend(turn.events)
    tracks = desired.tracks_for(ws, revision, serving, turn.state)
    # The spec becomes the stable version once the stable Deployment runs it on every replica
    # (a rejected or unfinished template never does).
    promoted = tracks.stable is ws and rollout.deployment_runs(
        live.get(stable_ref), revision, ws.replicas
    )
    stable_spec = model.pod_fields(body["spec"]) if promoted else kept.stable_spec
    want = desired.desired(ws, tracks, held.Held(stable_spec, turn.record), pod_monitor_labels)

    deployment: dict[str, Any] | None = None
    problems: list[status.Problem] = [
        _forbidden(ref, error) for ref, error in forbidden.items() if ref not in want.absent
    ]
    for obj in want.objects:
        ref = Ref.of(obj)
        if ref in forbidden:
            continue  # unknown as it is: neither applied nor pruned blind
        try:
            synced = _sync_child(kube, obj, live.get(ref), outcome)
        except ApiError as error:
            problems.append(_problem(error, obj))
            synced = live.get(ref)
        outcome.seen[ref] = essence.digest(synced) if synced else ""
        if ref == stable_ref:
            deployment = synced
    for ref in want.absent:
        found = live.get(ref)
        if found is not None and _owned_by(found, ws.uid) and kube.delete(ref):
            outcome.seen[ref] = ""
            outcome.writes += 1
            outcome.events.append(("Normal", "Deleted", f"deleted {ref.kind} {ref.name}"))

    # Reports of what is kept: rewritten whenever they differ, so a forged one does not stay.
    if turn.record is not None and turn.record != previous.get("canary"):
        try:
            kube.apply_status(ws.namespace, ws.name, {"canary": turn.record}, rollout.FIELD_MANAGER)
        except ApiError as error:
            if error.status == 404:
                return  # deleted meanwhile: nothing left to report on
            raise
        outcome.writes += 1
    deployments = [live.get(ref) for ref in live if ref.kind == kinds.DEPLOYMENT.kind]
    problems += _pod_problems(kube, ws, deployments)
    new_status = status.compute(
        ws, want, deployment, problems, previous, rfc3339(now), turn.state, revision
    )
    if stable_spec is not None:
        new_status["stableSpec"] = stable_spec
    outcome.events.extend(_transition_events(previous, new_status))
    _write_status(kube, body, new_status, outcome)
    outcome.report = service_metrics.report(ws, kept.rollout, turn.record, new_status)


def _pod_problems(
    kube: KubeApi, ws: model.WebService, deployments: list[dict[str, Any] | None]
) -> list[status.Problem]:
    """Why pods do not start, read only while a Deployment has unavailable pods: a healthy
    WebService costs no pod listing."""
    if not any(((d or {}).get("status") or {}).get("unavailableReplicas") for d in deployments):
        return []
    selector = ",".join(f"{k}={v}" for k, v in pods_selector(ws).items())
    try:
        return pod_troubles.problems(kube.list(kinds.POD, ws.namespace, selector))
    except ApiError as error:
        if error.status != 403:
            raise
        # An older chart's role, without pods: serve on, only without the reasons.
        log.warning("may not list pods in %s: %s", ws.namespace, error.message)
        return []


def _condition(status_: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status_.get("conditions", []) if c["type"] == kind), {})


def _transition_events(previous: dict[str, Any], new: dict[str, Any]) -> list[machine.Event]:
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
