"""What of a child object a reconcile reads, as one digest. Pure.

A watch event whose object has the essence the reconciler last saw of it (read, or written by
its own apply) cannot change what a reconcile does: the operator skips it. Left out: the
resourceVersion and the times in managed fields (they change with every write), the managed
fields of status writers (drift looks only at the spec's), and the status of every kind but
the Deployment. Of that, only what herd.status and the rollout read: the replica counts and
the conditions that report a failure (the deployment controller's other condition changes,
such as its Progressing reasons, come with a change of the counts or change nothing Herd
reports).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_DEPLOYMENT_STATUS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
)
#: A Progressing reason that herd.status reports; the others it derives itself.
_FAILED_PROGRESS = "ProgressDeadlineExceeded"


def _status(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") != "Deployment":
        return None
    status = obj.get("status") or {}
    return {
        **{key: status.get(key) for key in _DEPLOYMENT_STATUS},
        "conditions": sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or []
            if c.get("type") == "ReplicaFailure" or c.get("reason") == _FAILED_PROGRESS
        ),
    }


def digest(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    essence = {
        "metadata": {
            **{k: v for k, v in meta.items() if k not in ("resourceVersion", "managedFields")},
            "managedFields": [
                {k: v for k, v in entry.items() if k != "time"}
                for entry in meta.get("managedFields") or []
                if not entry.get("subresource")
            ],
        },
        **{k: v for k, v in obj.items() if k not in ("metadata", "status")},
        "status": _status(obj),
    }
    return hashlib.sha256(json.dumps(essence, sort_keys=True, default=str).encode()).hexdigest()
