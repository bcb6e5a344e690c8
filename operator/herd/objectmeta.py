"""Names, labels and ownership shared by every object Herd renders for a WebService."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from herd import kinds
from herd.model import WebService

MANAGED_BY = "herd"
TRACK_LABEL = "herd.dev/track"
REVISION_LABEL = "herd.dev/revision"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# The operator's field managers, one per writer of its own: each owns its part of the status.
RECONCILER_MANAGER = "herd"
CANARY_MANAGER = "herd-canary"
AUTOSCALER_MANAGER = "herd-autoscaler"
OPERATOR_MANAGERS = frozenset({RECONCILER_MANAGER, CANARY_MANAGER, AUTOSCALER_MANAGER})
#: The status fields a user may write (`herd promote` and the rest, through herd-promoter).
USER_STATUS_FIELDS = frozenset({"intent"})


def canary_name(ws: WebService) -> str:
    return f"{ws.name}-canary"


def labels(ws: WebService, track: str = "stable") -> dict[str, str]:
    return {
        "app.kubernetes.io/name": ws.name,
        INSTANCE_LABEL: ws.name,
        "app.kubernetes.io/component": "server",
        MANAGED_BY_LABEL: MANAGED_BY,
        TRACK_LABEL: track,
    }


def selector(ws: WebService, track: str = "stable") -> dict[str, str]:
    """Pod selector of one track: immutable on a Deployment, so only stable labels."""
    return {INSTANCE_LABEL: ws.name, TRACK_LABEL: track}


def pods_selector(ws: WebService) -> dict[str, str]:
    """The labels the pods of both tracks carry, of this WebService's and no one else's."""
    return {INSTANCE_LABEL: ws.name, MANAGED_BY_LABEL: MANAGED_BY}


def selector_string(ws: WebService, track: str = "stable") -> str:
    return ",".join(f"{k}={v}" for k, v in selector(ws, track).items())


def owner_reference(ws: WebService) -> dict[str, Any]:
    return {
        **kinds.WEBSERVICE.type_meta(),
        "name": ws.name,
        "uid": ws.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    ws: WebService, name: str, track: str = "stable", annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ws.namespace,
        "labels": labels(ws, track),
        "ownerReferences": [owner_reference(ws)],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def revision(pod_template: dict[str, Any]) -> str:
    """A short, stable hash of a pod template: tells versions apart in labels and metrics."""
    canonical = json.dumps(pod_template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]
