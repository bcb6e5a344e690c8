"""Which changes of a child can change what a reconcile does."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from herd.essence import digest


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "resourceVersion": "10",
            "generation": 2,
            "labels": {"app.kubernetes.io/instance": "web"},
            "managedFields": [
                {"manager": "herd", "operation": "Apply", "time": "t1", "fieldsV1": {"f:spec": {}}}
            ],
        },
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "readyReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                 "lastUpdateTime": "t1"}
            ],
        },
    }  # fmt: skip


def as_kind(kind: str) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["kind"] = kind

    return change


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        node = obj
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _status_writer(obj: dict[str, Any]) -> None:
    obj["metadata"]["managedFields"].append(
        {"manager": "kube-controller-manager", "subresource": "status", "fieldsV1": {}}
    )


@pytest.mark.parametrize(
    ("change", "matters"),
    [
        (_set(("metadata", "resourceVersion"), "11"), False),  # every write bumps it
        (_set(("metadata", "managedFields", 0, "time"), "t2"), False),
        (_set(("status", "conditions", 0, "lastUpdateTime"), "t2"), False),
        (_set(("status", "readyReplicas"), 2), True),  # Ready depends on it
        (_set(("status", "observedGeneration"), 3), True),
        (_set(("status", "conditions", 0, "status"), "True"), False),  # comes with the count
        (_set(("status", "availableReplicas"), 2), True),  # Ready waits for it
        (
            _set(
                ("status", "conditions"),
                [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
            ),
            False,
        ),
        (
            _set(
                ("status", "conditions"),
                [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
            ),
            True,
        ),
        (
            _set(
                ("status", "conditions"),
                [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}],
            ),
            True,
        ),
        (_set(("status", "replicas"), 3), True),  # an old pod still there
        (_status_writer, False),  # drift reads only the spec's managers
        (_set(("spec", "replicas"), 3), True),  # a hand edit to undo
        (_set(("metadata", "labels", "extra"), "1"), True),
        (_set(("metadata", "managedFields", 0, "manager"), "kubectl-edit"), True),  # drift reads
        (_set(("metadata", "deletionTimestamp"), "t3"), True),
    ],
)
def test_a_deployments_essence(change, matters):
    changed = copy.deepcopy(deployment())
    change(changed)
    assert (digest(changed) != digest(deployment())) is matters


@pytest.mark.parametrize("kind", ["Service", "Ingress", "PodDisruptionBudget", "HTTPRoute"])
def test_the_status_of_other_kinds_is_never_read(kind):
    """An ingress controller's load balancer address or the disruption controller's counts."""
    before = copy.deepcopy(deployment())
    as_kind(kind)(before)
    after = copy.deepcopy(before)
    after["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}, "currentHealthy": 2}
    assert digest(after) == digest(before)
    after["spec"]["replicas"] = 9
    assert digest(after) != digest(before)
