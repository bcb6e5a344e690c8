"""Traffic through ingress-nginx: an Ingress per WebService with annotations from the tuning,
and during a rollout a canary Ingress for the same host and path.

The canary Ingress follows ingress-nginx's canary rules: only one canary Ingress per rule, and
it ignores most of its own annotations. It exists only while the canary has traffic (a weight
above 0, or a header or cookie route, see herd.desired): a second Ingress for the same host and
path that is not marked canary is an ordinary route, and a controller serves it beside the main
one (Traefik did, with 503s while its pods started). ingress-nginx, and Traefik's ingress-nginx
provider, evaluate canary-by-header, then canary-by-cookie, then canary-weight."""

from __future__ import annotations

from typing import Any

from herd import kinds, objectmeta
from herd.kinds import Ref
from herd.model import IngressRoute, RequestMatch, WebService
from herd.objectmeta import canary_name
from herd.routing.traffic import CanaryTraffic
from herd.serving.tuning import ServerConfig

PREFIX = "nginx.ingress.kubernetes.io/"


def annotations(route: IngressRoute, config: ServerConfig) -> dict[str, str]:
    """Herd's annotations (timeouts above the app's, the body size), then the user's on top."""
    derived = {
        PREFIX + "proxy-read-timeout": str(config.ingress_read_timeout_seconds),
        PREFIX + "proxy-send-timeout": str(config.ingress_read_timeout_seconds),
        PREFIX + "proxy-body-size": route.max_body_size,
    }
    return {**derived, **route.annotations}


def _ingress(
    ws: WebService, route: IngressRoute, name: str, service: str, track: str, notes: dict[str, str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": route.host,
                "http": {
                    "paths": [
                        {
                            "path": route.path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service, "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ],
    }
    if route.class_name:
        spec["ingressClassName"] = route.class_name
    if route.tls_secret_name:
        spec["tls"] = [{"hosts": [route.host], "secretName": route.tls_secret_name}]
    return {
        **kinds.INGRESS.type_meta(),
        "metadata": objectmeta.metadata(ws, name, track, annotations=notes),
        "spec": spec,
    }


def ingress(ws: WebService, route: IngressRoute, config: ServerConfig) -> dict[str, Any]:
    return _ingress(ws, route, ws.name, ws.name, "stable", annotations(route, config))


def match_annotations(match: RequestMatch | None) -> dict[str, str]:
    """canary-by-header (with -value for an exact value; without it, ingress-nginx's "always"
    and "never") or canary-by-cookie ("always" and "never")."""
    if match is None:
        return {}
    if match.kind == "cookie":
        return {PREFIX + "canary-by-cookie": match.name}
    notes = {PREFIX + "canary-by-header": match.name}
    if match.value is not None:
        notes[PREFIX + "canary-by-header-value"] = match.value
    return notes


def canary_ingress(ws: WebService, route: IngressRoute, traffic: CanaryTraffic) -> dict[str, Any]:
    notes = {
        PREFIX + "canary": "true",
        PREFIX + "canary-weight": str(traffic.weight),
        **match_annotations(traffic.match),
    }
    name = canary_name(ws)
    return _ingress(ws, route, name, name, "canary", notes)


class NginxRouter:
    def objects(
        self,
        ws: WebService,
        route: IngressRoute,
        config: ServerConfig,
        canary: CanaryTraffic | None,
    ) -> list[dict[str, Any]]:
        objects = [ingress(ws, route, config)]
        if canary is not None:
            objects.append(canary_ingress(ws, route, canary))
        return objects

    def owned(self, ws: WebService) -> list[Ref]:
        return [Ref(kinds.INGRESS.kind, ws.namespace, name) for name in (ws.name, canary_name(ws))]

    def url(self, route: IngressRoute) -> str:
        scheme = "https" if route.tls_secret_name else "http"
        return f"{scheme}://{route.host}{route.path}"
