"""The WebService CustomResourceDefinition, built from `herd.api`."""

from __future__ import annotations

from typing import Any

from herd import api

CRD_NAME = f"{api.PLURAL}.{api.GROUP}"


def webservice_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "herd", "app.kubernetes.io/part-of": "herd"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": ["all", "herd"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": api.ROOT.openapi()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {
                            "name": "Replicas",
                            "type": "string",
                            "jsonPath": ".status.readyReplicas",
                            "description": "Ready pods of the stable version",
                        },
                        {
                            "name": "Workers",
                            "type": "integer",
                            "jsonPath": ".status.server.workers",
                            "description": "Worker processes per pod",
                        },
                        {
                            "name": "Class",
                            "type": "string",
                            "priority": 1,
                            "jsonPath": ".status.server.workerClass",
                        },
                        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


_PEERING_SCHEMA = {
    "type": "object",
    "description": "Keep-alives of the operator replicas sharing this peering; the one with "
    "the highest priority is active.",
    "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
}


def kopf_peering_crds() -> list[dict[str, Any]]:
    """The CRDs kopf uses to keep one active operator among replicas (kopf's peering)."""
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.kopf.dev"},
            "spec": {
                "group": "kopf.dev",
                "scope": scope,
                "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": _PEERING_SCHEMA},
                    }
                ],
            },
        }
        for kind, plural, scope in (
            ("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
            ("KopfPeering", "kopfpeerings", "Namespaced"),
        )
    ]
