"""The WebService status from what was observed: conditions, replicas, resolved tuning. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herd.desired import Desired
from herd.model import WebService
from herd.objectmeta import selector_string
from herd.rollout import machine
from herd.serving.tuning import ServerConfig


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Problem:
    """Why a WebService cannot be served as asked (surfaced as Degraded with this reason)."""

    reason: str
    message: str


def server_status(config: ServerConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workerClass": config.worker_class,
        "workers": config.workers,
        "threads": config.threads,
        "keepAliveSeconds": config.keep_alive_seconds,
        "timeoutSeconds": config.timeout_seconds,
        "gracefulTimeoutSeconds": config.graceful_timeout_seconds,
        "maxRequests": config.max_requests,
        "maxRequestsJitter": config.max_requests_jitter,
        "preload": config.preload,
        "cpu": config.cpu,
    }
    if config.memory_bytes is not None:
        out["memoryBytes"] = config.memory_bytes
    return out


def _deployment_condition(deployment: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in deployment.get("status", {}).get("conditions", []):
        if condition.get("type") == kind:
            return condition
    return {}


def rollout_conditions(want: int, deployment: dict[str, Any] | None) -> tuple[Condition, ...]:
    """Ready and Progressing from the stable Deployment.

    From its available pods, not only its ready ones: `minReadySeconds` (herd.serving.workload)
    is also the time an ingress controller takes to add a pod. Ready as soon as the pods were,
    Traefik on the local real node answered 503 to the first requests sent after Ready."""
    if deployment is None:
        return (
            Condition("Ready", False, "DeploymentMissing", "the Deployment does not exist yet"),
            Condition("Progressing", True, "Creating", "creating the Deployment"),
        )
    status = deployment.get("status", {})
    observed = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    updated = status.get("updatedReplicas", 0)
    ready = status.get("readyReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)

    progress = _deployment_condition(deployment, "Progressing")
    if progress.get("reason") == "ProgressDeadlineExceeded":
        progressing = Condition(
            "Progressing",
            False,
            "ProgressDeadlineExceeded",
            progress.get("message", "the rollout stopped making progress"),
        )
    elif not observed or updated < want or total > want or available < want:
        progressing = Condition(
            "Progressing",
            True,
            "RollingOut",
            f"{updated} of {want} pods updated, {available} available",
        )
    else:
        progressing = Condition(
            "Progressing", False, "RolloutComplete", f"all {want} pods run the current revision"
        )

    if want == 0:
        ready_condition = Condition("Ready", True, "ScaledToZero", "scaled to zero replicas")
    elif available >= want and ready >= want:
        ready_condition = Condition("Ready", True, "Available", f"{ready} of {want} pods ready")
    else:
        ready_condition = Condition(
            "Ready", False, "ReplicasNotReady", f"{ready} of {want} pods ready"
        )
    return ready_condition, progressing


def deployment_problems(deployment: dict[str, Any] | None) -> list[Problem]:
    """What keeps the Deployment's pods from being created (quota, admission policies)."""
    failure = _deployment_condition(deployment or {}, "ReplicaFailure")
    if failure.get("status") == "True":
        return [Problem("ReplicaFailure", failure.get("message", "pods cannot be created"))]
    return []


def degraded_condition(problems: list[Problem]) -> Condition:
    if not problems:
        return Condition("Degraded", False, "AsExpected", "no problems found")
    return Condition("Degraded", True, problems[0].reason, "; ".join(p.message for p in problems))


#: Degraded reasons the API server decides (RBAC, admission, quota): mended outside the
#: WebService, so no change of it or its children would reconcile it again. Retried instead.
RETRIED = frozenset({"Forbidden", "ApplyFailed"})


def retry_wanted(status: dict[str, Any]) -> bool:
    """Is the WebService Degraded for a reason only a retry notices the end of?"""
    return any(
        c.get("type") == "Degraded" and c.get("status") == "True" and c.get("reason") in RETRIED
        for c in status.get("conditions") or []
    )


def merge_conditions(
    previous: list[dict[str, Any]], new: tuple[Condition, ...], generation: int, now: str
) -> list[dict[str, Any]]:
    """Conditions in the API convention, keeping lastTransitionTime while status is unchanged."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for condition in new:
        status = "True" if condition.status else "False"
        old = before.get(condition.type, {})
        merged.append(
            {
                "type": condition.type,
                "status": status,
                "reason": condition.reason,
                "message": condition.message,
                "observedGeneration": generation,
                "lastTransitionTime": old.get("lastTransitionTime", now)
                if old.get("status") == status
                else now,
            }
        )
    return merged


NO_ROLLOUT = machine.State()


def canary_conditions(
    canary: machine.State, spec_revision: str, progressing: Condition
) -> tuple[Condition, list[Problem]]:
    """While a canary runs it is what is progressing; a rejected revision degrades the service
    until the spec changes again (or `herd retry`)."""
    if canary.active:
        return Condition("Progressing", True, f"Canary{canary.phase}", canary.message), []
    if canary.phase in machine.REJECTED and canary.canary_revision == spec_revision:
        return progressing, [Problem(canary.phase, canary.message)]
    return progressing, []


def compute(
    ws: WebService,
    desired: Desired,
    deployment: dict[str, Any] | None,
    problems: list[Problem],
    previous: dict[str, Any],
    now: str,
    canary: machine.State = NO_ROLLOUT,
    spec_revision: str = "",
) -> dict[str, Any]:
    """The full status of a WebService that could be rendered (the reconciler's part)."""
    advice = [Problem(a.reason, a.message) for a in desired.config.advice]
    refused = getattr(ws.route, "refused_annotations", ())
    if refused:
        advice.append(
            Problem(
                "AnnotationNotAllowed",
                f"Ingress annotations left out, as the operator's policy refuses them: "
                f"{'; '.join(refused)}. The cluster admin may allow one "
                "(the chart's settings.allowedIngressAnnotations)",
            )
        )
    ready, progressing = rollout_conditions(ws.replicas, deployment)
    progressing, rejected = canary_conditions(canary, spec_revision, progressing)
    conditions = (
        ready,
        progressing,
        degraded_condition([*problems, *rejected, *deployment_problems(deployment), *advice]),
    )
    observed = (deployment or {}).get("status", {})
    return {
        "observedGeneration": ws.generation,
        "conditions": merge_conditions(
            previous.get("conditions", []), conditions, ws.generation, now
        ),
        "replicas": observed.get("replicas", 0),
        "readyReplicas": observed.get("readyReplicas", 0),
        "updatedReplicas": observed.get("updatedReplicas", 0),
        "selector": selector_string(ws),
        "url": desired.url,
        "revision": desired.revision,
        "server": server_status(desired.config),
    }


def invalid(
    generation: int, problem: Problem, previous: dict[str, Any], now: str
) -> dict[str, Any]:
    """Status of a WebService that cannot be rendered at all: what was observed stays."""
    conditions = (
        Condition("Ready", False, problem.reason, "the spec cannot be served; see Degraded"),
        Condition("Progressing", False, problem.reason, "waiting for a corrected spec"),
        degraded_condition([problem]),
    )
    return {
        **previous,
        "observedGeneration": generation,
        "conditions": merge_conditions(previous.get("conditions", []), conditions, generation, now),
    }


def unchanged(new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Does the status already hold `new`? Only the fields and condition types in `new` count:
    other writers (the autoscaler, the canary controller) own the rest of the status."""
    kinds = {c["type"] for c in new.get("conditions", [])}
    mine = {key: previous.get(key) for key in new}
    if "conditions" in new:
        mine["conditions"] = [c for c in previous.get("conditions", []) if c.get("type") in kinds]
    return mine == new
