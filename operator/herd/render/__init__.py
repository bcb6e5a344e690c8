"""Everything a WebService should consist of, as plain objects: pure, no API calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herd.model import WebService
from herd.render import ingress_nginx, keda, workload
from herd.render.meta import REVISION_LABEL
from herd.tuning import ServerConfig, resolve


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Desired:
    """Objects to apply, objects that must not exist, and what status reports about them."""

    objects: tuple[dict[str, Any], ...]
    absent: tuple[ObjectRef, ...]
    config: ServerConfig
    revision: str
    url: str


def desired(ws: WebService) -> Desired:
    config = resolve(ws.interface, ws.server, ws.resources, behind_ingress=ws.ingress is not None)
    deployment = workload.deployment(ws, config, replicas=ws.replicas)
    objects: list[dict[str, Any]] = [deployment, workload.service(ws)]
    absent: list[ObjectRef] = []

    if ws.ingress is not None:
        objects.append(ingress_nginx.ingress(ws, ws.ingress, config))
        url = ingress_nginx.url(ws.ingress)
    else:
        absent.append(ObjectRef("networking.k8s.io/v1", "Ingress", ws.namespace, ws.name))
        url = f"http://{ws.name}.{ws.namespace}.svc.cluster.local:{ws.port}"

    # A budget only protects something when there is a second pod to keep serving.
    if ws.replicas > 1:
        objects.append(workload.pod_disruption_budget(ws))
    else:
        absent.append(ObjectRef("policy/v1", "PodDisruptionBudget", ws.namespace, ws.name))

    if ws.autoscaling.enabled and ws.autoscaling.engine == "keda":
        objects.append(keda.scaled_object(ws))
    else:
        absent.append(ObjectRef("keda.sh/v1alpha1", "ScaledObject", ws.namespace, ws.name))

    revision = deployment["spec"]["template"]["metadata"]["labels"][REVISION_LABEL]
    return Desired(tuple(objects), tuple(absent), config, revision, url)
