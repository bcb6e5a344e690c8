"""Conditions from what the Deployment reports."""

from __future__ import annotations

import pytest

from herd import status
from herd.status import Condition, merge_conditions, rollout_conditions


def deployment(
    generation=1,
    observed=1,
    replicas=2,
    updated=2,
    ready=2,
    available=2,
    progressing_reason="NewReplicaSetAvailable",
):
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [{"type": "Progressing", "reason": progressing_reason, "message": "m"}],
        },
    }


@pytest.mark.parametrize(
    ("want", "dep", "ready", "progressing"),
    [
        (2, None, ("False", "DeploymentMissing"), ("True", "Creating")),
        (2, deployment(), ("True", "Available"), ("False", "RolloutComplete")),
        (2, deployment(generation=2), ("True", "Available"), ("True", "RollingOut")),
        (2, deployment(updated=1, replicas=3), ("True", "Available"), ("True", "RollingOut")),
        (
            2,
            deployment(ready=1, available=1),
            ("False", "ReplicasNotReady"),
            ("True", "RollingOut"),
        ),
        (3, deployment(), ("False", "ReplicasNotReady"), ("True", "RollingOut")),
        # Ready pods before minReadySeconds passed: the ingress may not route to them yet.
        (2, deployment(available=0), ("False", "ReplicasNotReady"), ("True", "RollingOut")),
        (
            0,
            deployment(replicas=0, updated=0, ready=0, available=0),
            ("True", "ScaledToZero"),
            ("False", "RolloutComplete"),
        ),
        (
            2,
            deployment(updated=1, progressing_reason="ProgressDeadlineExceeded"),
            ("True", "Available"),
            ("False", "ProgressDeadlineExceeded"),
        ),
    ],
)
def test_rollout_conditions(want, dep, ready, progressing):
    r, p = rollout_conditions(want, dep)
    assert (("True" if r.status else "False"), r.reason) == ready
    assert (("True" if p.status else "False"), p.reason) == progressing


def test_transition_time_moves_only_when_status_changes():
    first = merge_conditions([], (Condition("Ready", False, "A", "a"),), 1, "t1")
    same = merge_conditions(first, (Condition("Ready", False, "B", "b"),), 2, "t2")
    flipped = merge_conditions(same, (Condition("Ready", True, "C", "c"),), 2, "t3")
    assert first[0]["lastTransitionTime"] == "t1"
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "t3"


def test_pods_that_cannot_be_created_degrade_the_service():
    from herd.status import deployment_problems

    dep = deployment()
    dep["status"]["conditions"].append(
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'pods "web-1" is forbidden: exceeded quota',
        }
    )
    assert [(p.reason, p.message) for p in deployment_problems(dep)] == [
        ("ReplicaFailure", 'pods "web-1" is forbidden: exceeded quota')
    ]
    assert deployment_problems(deployment()) == []
    assert deployment_problems(None) == []


def test_unchanged_ignores_what_other_writers_own():
    from herd.status import unchanged

    mine = {"replicas": 2, "conditions": [{"type": "Ready", "status": "True"}]}
    theirs = {
        "autoscaling": {"currentRPM": 10},
        "conditions": [{"type": "ScalingActive", "status": "True"}],
    }
    merged = {**theirs, **mine, "conditions": theirs["conditions"] + mine["conditions"]}
    assert unchanged(mine, merged)
    assert not unchanged({**mine, "replicas": 3}, merged)
    assert not unchanged({**mine, "conditions": [{"type": "Ready", "status": "False"}]}, merged)


def _degraded(reason: str, value: str = "True") -> dict:
    return {"conditions": [{"type": "Degraded", "status": value, "reason": reason}]}


@pytest.mark.parametrize(
    ("observed", "wanted"),
    [
        ({}, False),
        (_degraded("AsExpected", "False"), False),
        (_degraded("Forbidden"), True),  # RBAC given back: nothing else would notice
        (_degraded("ApplyFailed"), True),  # an admission webhook or quota mended
        (_degraded("Forbidden", "False"), False),
        (_degraded("RiskyAnnotation"), False),  # the user's edit reconciles it
        (_degraded("ReplicaFailure"), False),  # the Deployment's status change does
        ({"conditions": [{"type": "Ready", "status": "True", "reason": "Forbidden"}]}, False),
    ],
)
def test_only_what_the_api_server_decides_is_retried(observed, wanted):
    assert status.retry_wanted(observed) is wanted
