"""What of a child object a reconcile reads, as one digest. Pure.

A watch event whose object has the essence the reconciler last saw of it (read, or written by
its own apply) cannot change what a reconcile does: the operator skips it. Left out: the
resourceVersion and the times in managed fields (they change with every write), and the status
of every kind but the Deployment, whose replica counts and conditions make the WebService's
Ready and Progressing (a PodDisruptionBudget's or an Ingress's status is never read).
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


def _status(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") != "Deployment":
        return None
    status = obj.get("status") or {}
    return {
        **{key: status.get(key) for key in _DEPLOYMENT_STATUS},
        "conditions": sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in status.get("conditions") or []
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
            ],
        },
        **{k: v for k, v in obj.items() if k not in ("metadata", "status")},
        "status": _status(obj),
    }
    return hashlib.sha256(json.dumps(essence, sort_keys=True, default=str).encode()).hexdigest()
