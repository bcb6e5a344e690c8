"""The WebServices the end-to-end tests run: the example images, sized to fit a 2-core node."""

from __future__ import annotations

import json

from tests.support import real_node

FLASK = "ghcr.io/herd-dev/example-flask:0.1.0"
FLASK_NEXT = "ghcr.io/herd-dev/example-flask:0.2.0"


def host(namespace: str) -> str:
    """Each test's own host name: an Ingress left in a namespace still being deleted must not
    take the next test's requests."""
    return f"web.{namespace}.localtest.me"


def webservice(
    namespace: str,
    image: str = FLASK,
    *,
    replicas: int = 2,
    router: str = "nginx",
    env: dict[str, str] | None = None,
    canary: dict | None = None,
    autoscaling: dict | None = None,
) -> str:
    route: dict = {"host": host(namespace)}
    if router == "gateway":
        route = {"httpRoute": {**route, "gateway": real_node.GATEWAY}}
    else:
        route = {"ingress": route}
    spec: dict = {
        "image": image,
        "app": "herd_examples.flask_app:app",
        "interface": "wsgi",
        "replicas": replicas,
        "resources": {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "server": {"workload": "io", "workers": 1, "threads": 8},
        "route": route,
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    if canary is not None:
        spec["canary"] = canary
    if autoscaling is not None:
        spec["autoscaling"] = autoscaling
    return json.dumps(
        {
            "apiVersion": "herd.dev/v1alpha1",
            "kind": "WebService",
            "metadata": {"name": "web"},
            "spec": spec,
        }
    )
