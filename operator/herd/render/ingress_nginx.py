"""Traffic through ingress-nginx: one Ingress per WebService, annotations from the tuning."""

from __future__ import annotations

from typing import Any

from herd.model import IngressSpec, WebService
from herd.render import meta
from herd.tuning import ServerConfig

PREFIX = "nginx.ingress.kubernetes.io/"


def annotations(route: IngressSpec, config: ServerConfig) -> dict[str, str]:
    """Herd's annotations (timeouts above the app's, the body size), then the user's on top."""
    derived = {
        PREFIX + "proxy-read-timeout": str(config.ingress_read_timeout_seconds),
        PREFIX + "proxy-send-timeout": str(config.ingress_read_timeout_seconds),
        PREFIX + "proxy-body-size": route.max_body_size,
    }
    return {**derived, **route.annotations}


def ingress(ws: WebService, route: IngressSpec, config: ServerConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": route.host,
                "http": {
                    "paths": [
                        {
                            "path": route.path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": ws.name, "port": {"name": "http"}}},
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
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta.metadata(ws, ws.name, annotations=annotations(route, config)),
        "spec": spec,
    }


def url(route: IngressSpec) -> str:
    scheme = "https" if route.tls_secret_name else "http"
    return f"{scheme}://{route.host}{route.path}"
