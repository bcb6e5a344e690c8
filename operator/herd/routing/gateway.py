"""Traffic through Gateway API: one HTTPRoute attached to the named Gateway, whose weighted
backendRefs split traffic between the stable and canary Services during a rollout. The
forward path now that ingress-nginx is retired upstream.

A header or cookie route is a rule of its own before the weighted one, matching the header and
sending only to the canary: of two rules for the same path, Gateway API prefers the one with
more header matches, whatever their order."""

from __future__ import annotations

import re
from typing import Any

from herd import kinds, objectmeta
from herd.kinds import Ref
from herd.model import ALWAYS, HttpRoute, RequestMatch, WebService
from herd.objectmeta import canary_name
from herd.routing.traffic import CanaryTraffic
from herd.serving.tuning import ServerConfig


def header_match(match: RequestMatch) -> dict[str, str]:
    """The HTTPHeaderMatch of a header or cookie route. A cookie is one pair in the Cookie
    header, so it needs a RegularExpression match (standard channel, dialect left to the
    implementation; this one is RE2, as Traefik and Envoy read it). Without a value, a header
    matches ingress-nginx's "always"."""
    if match.kind == "cookie":
        pair = rf"(^|;\s*){re.escape(match.name)}={ALWAYS}(;|$)"
        return {"type": "RegularExpression", "name": "Cookie", "value": pair}
    return {"type": "Exact", "name": match.name, "value": match.value or ALWAYS}


def _rule(
    route: HttpRoute,
    config: ServerConfig,
    backends: list[dict[str, Any]],
    headers: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A rule for the route's path (and `headers`), each its own objects: shared ones would
    be YAML anchors in `herd render`."""
    match: dict[str, Any] = {"path": {"type": "PathPrefix", "value": route.path}}
    if headers:
        match["headers"] = headers
    return {
        "matches": [match],
        "backendRefs": backends,
        # As with ingress-nginx: the gateway waits longer than the app's timeout.
        "timeouts": {"request": f"{config.ingress_read_timeout_seconds}s"},
    }


def http_route(
    ws: WebService, route: HttpRoute, config: ServerConfig, canary: CanaryTraffic | None
) -> dict[str, Any]:
    gateway = kinds.HTTP_ROUTE.group
    parent: dict[str, Any] = {"group": gateway, "kind": "Gateway", "name": route.gateway.name}
    if route.gateway.namespace:
        parent["namespace"] = route.gateway.namespace
    if route.gateway.section_name:
        parent["sectionName"] = route.gateway.section_name
    weight = canary.weight if canary is not None else 0
    backends: list[dict[str, Any]] = [{"name": ws.name, "port": ws.port, "weight": 100 - weight}]
    if weight > 0:
        backends.append({"name": canary_name(ws), "port": ws.port, "weight": weight})
    rules: list[dict[str, Any]] = []
    if canary is not None and canary.match is not None:
        pinned = [{"name": canary_name(ws), "port": ws.port}]
        rules.append(_rule(route, config, pinned, [header_match(canary.match)]))
    rules.append(_rule(route, config, backends))
    return {
        **kinds.HTTP_ROUTE.type_meta(),
        "metadata": objectmeta.metadata(ws, ws.name),
        "spec": {
            "parentRefs": [parent],
            "hostnames": [route.host],
            "rules": rules,
        },
    }


class GatewayRouter:
    def objects(
        self, ws: WebService, route: HttpRoute, config: ServerConfig, canary: CanaryTraffic | None
    ) -> list[dict[str, Any]]:
        return [http_route(ws, route, config, canary)]

    def owned(self, ws: WebService) -> list[Ref]:
        return [Ref(kinds.HTTP_ROUTE.kind, ws.namespace, ws.name)]

    def url(self, route: HttpRoute) -> str:
        return f"http://{route.host}{route.path}"
