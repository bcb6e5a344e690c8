"""Everything a WebService should consist of, as plain objects: pure, no API calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from herd.autoscaling import keda
from herd.model import IngressSpec, WebService
from herd.objectmeta import REVISION_LABEL, ObjectRef, canary_name
from herd.rollout.machine import canary_replicas
from herd.routing.gateway import GatewayApiRouter
from herd.routing.nginx import IngressNginxRouter
from herd.routing.nginx import url as ingress_url
from herd.serving import workload
from herd.serving.tuning import ServerConfig, resolve


class Router(Protocol):
    """A traffic provider: the objects that route to the stable and (weighted) canary Services,
    and the ones of the other provider that must not linger."""

    def objects(
        self, ws: WebService, route: IngressSpec, config: ServerConfig, canary_weight: int | None
    ) -> list[dict[str, Any]]: ...

    def absent(self, ws: WebService, canary: bool) -> list[ObjectRef]: ...


def router_for(route: IngressSpec) -> Router:
    return GatewayApiRouter() if route.gateway is not None else IngressNginxRouter()


@dataclass(frozen=True)
class Tracks:
    """What each track runs: the stable version (the spec, or the last good spec while a
    canary is judged) and, during a rollout, the canary at its traffic weight."""

    stable: WebService
    canary: WebService | None = None
    weight: int = 0


@dataclass(frozen=True)
class Desired:
    """Objects to apply, objects that must not exist, and what status reports about them."""

    objects: tuple[dict[str, Any], ...]
    absent: tuple[ObjectRef, ...]
    config: ServerConfig
    revision: str
    url: str
    canary_revision: str | None = None


def _config(ws: WebService) -> ServerConfig:
    return resolve(ws.interface, ws.server, ws.resources, behind_ingress=ws.ingress is not None)


def revision_of(ws: WebService) -> str:
    """The revision (pod template hash) a WebService's spec renders to."""
    template = workload.deployment(ws, _config(ws), replicas=0)["spec"]["template"]
    return template["metadata"]["labels"][REVISION_LABEL]


def desired(ws: WebService, tracks: Tracks | None = None) -> Desired:
    tracks = tracks or Tracks(stable=ws)
    config = _config(tracks.stable)
    deployment = workload.deployment(tracks.stable, config, replicas=ws.replicas)
    objects: list[dict[str, Any]] = [deployment, workload.service(ws)]
    absent: list[ObjectRef] = []
    canary = tracks.canary
    name = canary_name(ws)

    canary_revision = None
    if canary is not None:
        canary_deployment = workload.deployment(
            canary, _config(canary), canary_replicas(ws.replicas, tracks.weight), name, "canary"
        )
        objects += [canary_deployment, workload.service(ws, name, "canary")]
        canary_revision = canary_deployment["spec"]["template"]["metadata"]["labels"][
            REVISION_LABEL
        ]
    else:
        absent += [
            ObjectRef("apps/v1", "Deployment", ws.namespace, name),
            ObjectRef("v1", "Service", ws.namespace, name),
        ]

    if ws.ingress is not None:
        router = router_for(ws.ingress)
        # No route to a canary at weight 0: Traefik sent requests to a canary Ingress at
        # weight 0 and answered 503 while its pods were starting (the local real node).
        routed = canary is not None and tracks.weight > 0
        objects += router.objects(ws, ws.ingress, config, tracks.weight if routed else None)
        absent += router.absent(ws, routed)
        url = ingress_url(ws.ingress)
    else:
        absent += [
            ObjectRef("networking.k8s.io/v1", "Ingress", ws.namespace, n) for n in (ws.name, name)
        ]
        absent.append(ObjectRef("gateway.networking.k8s.io/v1", "HTTPRoute", ws.namespace, ws.name))
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
    return Desired(tuple(objects), tuple(absent), config, revision, url, canary_revision)
