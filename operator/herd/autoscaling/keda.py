"""`autoscaling.engine: keda`: a KEDA ScaledObject scaling the WebService (through its scale
subresource) on requests per minute, instead of Herd's built-in loop. KEDA feeds the RPM to an
HPA as an average value, which asks for ceil(RPM / targetRPMPerReplica) replicas; the error-rate
guard of the built-in engine has no KEDA equivalent."""

from __future__ import annotations

from typing import Any

from herd import kinds, objectmeta
from herd.metric_sources import SOURCES, target
from herd.model import WebService

POLLING_INTERVAL_SECONDS = 15


def scaled_object(ws: WebService) -> dict[str, Any]:
    scaling = ws.autoscaling
    rpm = SOURCES[ws.metrics.source].requests_per_minute(target(ws))
    return {
        **kinds.SCALED_OBJECT.type_meta(),
        "metadata": objectmeta.metadata(ws, ws.name),
        "spec": {
            "scaleTargetRef": {**kinds.WEBSERVICE.type_meta(), "name": ws.name},
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "pollingInterval": POLLING_INTERVAL_SECONDS,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": scaling.scale_down_stabilization_seconds
                        }
                    }
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": ws.metrics.prometheus_url,
                        "query": rpm,
                        "threshold": str(scaling.target_rpm_per_replica),
                    },
                }
            ],
        },
    }
