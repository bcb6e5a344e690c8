"""Traffic through Gateway API: one HTTPRoute attached to the named Gateway, whose weighted
backendRefs split traffic between the stable and canary Services during a rollout. The
forward path now that ingress-nginx is retired upstream."""

from __future__ import annotations

from typing import Any

from herd import objectmeta
from herd.model import IngressSpec, WebService
from herd.objectmeta import ObjectRef, canary_name
from herd.serving.tuning import ServerConfig


def http_route(
    ws: WebService, route: IngressSpec, config: ServerConfig, canary_weight: int | None
) -> dict[str, Any]:
    assert route.gateway is not None
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": route.gateway.name,
    }
    if route.gateway.namespace:
        parent["namespace"] = route.gateway.namespace
    if route.gateway.section_name:
        parent["sectionName"] = route.gateway.section_name
    backends: list[dict[str, Any]] = [
        {"name": ws.name, "port": ws.port, "weight": 100 - (canary_weight or 0)}
    ]
    if canary_weight is not None:
        backends.append({"name": canary_name(ws), "port": ws.port, "weight": canary_weight})
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": objectmeta.metadata(ws, ws.name),
        "spec": {
            "parentRefs": [parent],
            "hostnames": [route.host],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
                    "backendRefs": backends,
                    # As with ingress-nginx: the gateway waits longer than the app's timeout.
                    "timeouts": {"request": f"{config.ingress_read_timeout_seconds}s"},
                }
            ],
        },
    }


class GatewayApiRouter:
    def objects(
        self, ws: WebService, route: IngressSpec, config: ServerConfig, canary_weight: int | None
    ) -> list[dict[str, Any]]:
        return [http_route(ws, route, config, canary_weight)]

    def absent(self, ws: WebService, canary: bool) -> list[ObjectRef]:
        return [
            ObjectRef("networking.k8s.io/v1", "Ingress", ws.namespace, name)
            for name in (ws.name, canary_name(ws))
        ]
