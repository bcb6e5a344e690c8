"""Traffic through Gateway API: one HTTPRoute attached to the named Gateway, whose weighted
backendRefs split traffic between the stable and canary Services during a rollout. The
forward path now that ingress-nginx is retired upstream."""

from __future__ import annotations

from typing import Any

from herd import kinds, objectmeta
from herd.kinds import Ref
from herd.model import HttpRoute, WebService
from herd.objectmeta import canary_name
from herd.serving.tuning import ServerConfig


def http_route(
    ws: WebService, route: HttpRoute, config: ServerConfig, canary_weight: int | None
) -> dict[str, Any]:
    gateway = kinds.HTTP_ROUTE.group
    parent: dict[str, Any] = {"group": gateway, "kind": "Gateway", "name": route.gateway.name}
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
        **kinds.HTTP_ROUTE.type_meta(),
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


class GatewayRouter:
    def objects(
        self, ws: WebService, route: HttpRoute, config: ServerConfig, canary_weight: int | None
    ) -> list[dict[str, Any]]:
        return [http_route(ws, route, config, canary_weight)]

    def owned(self, ws: WebService) -> list[Ref]:
        return [Ref(kinds.HTTP_ROUTE.kind, ws.namespace, ws.name)]

    def url(self, route: HttpRoute) -> str:
        return f"http://{route.host}{route.path}"
