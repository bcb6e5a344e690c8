"""Everything a WebService should consist of, as plain objects: pure, no API calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from herd import held, kinds, routing
from herd.autoscaling import keda
from herd.held import Held
from herd.kinds import Ref
from herd.model import RequestMatch, WebService
from herd.objectmeta import REVISION_LABEL, canary_name
from herd.rollout.machine import State, canary_replicas
from herd.routing.traffic import CanaryTraffic
from herd.serving import pod_monitor, workload
from herd.serving.tuning import ServerConfig, resolve


@dataclass(frozen=True)
class Tracks:
    """What each track runs: the stable version (the spec, or the last good spec while a
    canary is judged) and, during a rollout, the canary at its traffic weight, with the requests
    a header or cookie route pins to it."""

    stable: WebService
    canary: WebService | None = None
    weight: int = 0
    match: RequestMatch | None = None


@dataclass(frozen=True)
class Desired:
    """Objects to apply, objects that must not exist, and what status reports about them."""

    objects: tuple[dict[str, Any], ...]
    absent: tuple[Ref, ...]
    config: ServerConfig
    revision: str
    url: str


def tracks_for(ws: WebService, revision: str, serving: WebService | None, rollout: State) -> Tracks:
    """What each track runs, for `ws` (whose pod template hashes to `revision`) while the
    version `serving` (herd.held) serves, in rollout state `rollout`. The one place
    that says which version is stable: `serving`, except once the rollout of `revision` is
    promoting or promoted, when the stable Deployment runs the spec."""
    if ws.canary is None or serving is None:
        return Tracks(stable=ws)
    promoted = rollout.phase in ("Promoting", "Succeeded") and rollout.canary_revision == revision
    stable = ws if promoted else serving
    return Tracks(stable, ws if rollout.active else None, rollout.weight, rollout.match)


def config_of(ws: WebService) -> ServerConfig:
    return resolve(
        ws.interface,
        ws.server,
        ws.resources,
        behind_ingress=ws.route is not None,
        recycling_runtime=ws.runtime == "inject",
    )


def revision_of(ws: WebService) -> str:
    """The revision (pod template hash) a WebService's spec renders to."""
    return workload.revision(ws, config_of(ws))


def owned(ws: WebService) -> list[Ref]:
    """Every object Herd may create for `ws`: each is either desired or pruned."""
    both = (ws.name, canary_name(ws))
    return [
        *(Ref(kinds.DEPLOYMENT.kind, ws.namespace, name) for name in both),
        *(Ref(kinds.SERVICE.kind, ws.namespace, name) for name in both),
        Ref(kinds.POD_DISRUPTION_BUDGET.kind, ws.namespace, ws.name),
        Ref(kinds.SCALED_OBJECT.kind, ws.namespace, ws.name),
        Ref(kinds.POD_MONITOR.kind, ws.namespace, ws.name),
        *routing.owned(ws),
    ]


def desired(
    ws: WebService,
    tracks: Tracks | None = None,
    kept: Held | None = None,
    pod_monitor_labels: tuple[tuple[str, str], ...] | None = None,
) -> Desired:
    """The objects of `ws`; `kept` is what the operator keeps on the stable Service. A
    PodMonitor, with `pod_monitor_labels`, unless they are None (off, or the cluster does not
    serve the CRD)."""
    tracks = tracks or Tracks(stable=ws)
    config = config_of(tracks.stable)
    deployment = workload.deployment(tracks.stable, config, ws.replicas)
    service = workload.service(ws, annotations=held.annotations(kept or Held()))
    objects: list[dict[str, Any]] = [deployment, service]
    canary = tracks.canary
    if canary is not None:
        name = canary_name(ws)
        replicas = canary_replicas(ws.replicas, tracks.weight)
        objects += [
            workload.deployment(canary, config_of(canary), replicas, name, "canary"),
            workload.service(ws, name, "canary"),
        ]

    if ws.route is not None:
        router = routing.router_for(ws.route)
        # No route to a canary without traffic: Traefik sent requests to a canary Ingress at
        # weight 0 and answered 503 while its pods were starting (the local real node). A
        # header or cookie route is traffic, set by the machine only once the canary is ready.
        routed = canary is not None and (tracks.weight > 0 or tracks.match is not None)
        traffic = CanaryTraffic(tracks.weight, tracks.match) if routed else None
        objects += router.objects(ws, ws.route, config, traffic)
        url = router.url(ws.route)
    else:
        url = f"http://{ws.name}.{ws.namespace}.svc.cluster.local:{ws.port}"

    # A budget only protects something when there is a second pod to keep serving.
    if ws.replicas > 1:
        objects.append(workload.pod_disruption_budget(ws))
    if ws.autoscaling.enabled and ws.autoscaling.engine == "keda":
        objects.append(keda.scaled_object(ws))
    if pod_monitor_labels is not None:
        objects.append(pod_monitor.pod_monitor(ws, pod_monitor_labels))

    wanted = {Ref.of(obj) for obj in objects}
    absent = tuple(ref for ref in owned(ws) if ref not in wanted)
    revision = deployment["spec"]["template"]["metadata"]["labels"][REVISION_LABEL]
    return Desired(tuple(objects), absent, config, revision, url)
