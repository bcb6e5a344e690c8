"""WebServices as the API server returns them, with the status the operator writes, for the
dashboard's tests."""

from __future__ import annotations

from typing import Any

from tests.support.canary_status import PAUSED

STEPS = [{"setWeight": 10}, {"pause": {"duration": 60}}, {"pause": {}}, {"setWeight": 50}]


def webservice(
    name: str = "web",
    namespace: str = "shop",
    canary: dict[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
    **status: Any,
) -> dict[str, Any]:
    """Ready with 3 of 3 replicas on uvicorn × 4; a canary plan when `steps` or `canary`."""
    spec: dict[str, Any] = {"image": "web:2", "app": "shop.main:app", "replicas": 3}
    if steps is not None or canary is not None:
        spec["canary"] = {"steps": steps or STEPS, "analysis": {"maxErrorRate": 0.01}}
    body: dict[str, Any] = {
        "observedGeneration": 1,
        "readyReplicas": 3,
        "url": f"http://{name}.example.com/",
        "server": {"workerClass": "uvicorn", "workers": 4},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available", "message": "3 ready"}
        ],
        **status,
    }
    if canary is not None:
        body["canary"] = canary
    return {
        "apiVersion": "herd.dev/v1alpha1",
        "kind": "WebService",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": spec,
        "status": body,
    }


def paused(**changes: Any) -> dict[str, Any]:
    """The rollout paused at step 3/4, waiting for herd promote."""
    return {**PAUSED, **changes}


def event(name: str, reason: str, message: str, at: str, kind: str = "Normal") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{name}.{reason.lower()}", "namespace": "shop"},
        "involvedObject": {"kind": "WebService", "name": name, "namespace": "shop"},
        "type": kind,
        "reason": reason,
        "message": message,
        "lastTimestamp": at,
        "count": 1,
    }
